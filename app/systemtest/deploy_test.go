package systemtest

import (
	"bytes"
	"debug/elf"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

func TestDockerfile_BuildsWithGoModsGo(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(Root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	df, _ := os.ReadFile(filepath.Join(Root(t), "Dockerfile"))
	if !strings.Contains(string(df), "FROM golang:"+goLine+"-") {
		t.Errorf("the Dockerfile's build image is not golang:%s (go.mod's go line)", goLine)
	}
}

func TestDockerfile_BuildFlagsMakeAStaticTrimmedBinary(t *testing.T) {
	env, args := DockerBuildLine(t, map[string]string{"REVISION": "r"})
	joined := strings.Join(env, " ") + " go " + strings.Join(args, " ")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-ldflags=", "-X main.revision=r", "-o "} {
		if !strings.Contains(joined, want) {
			t.Errorf("the Dockerfile's build step %q lacks %q", joined, want)
		}
	}

	bin := BuildBinary(t, "test-revision-1234")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revision test-revision-1234") {
		t.Errorf("version: %v %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v): it would not run on distroless/static", p.Type)
		}
	}
	wd := Root(t) // the folder it was built in
	if b, _ := os.ReadFile(bin); bytes.Contains(b, []byte(wd)) {
		t.Errorf("the binary contains the build folder %s: -trimpath did not apply", wd)
	}
}

// dockerfileFinalStage returns the instructions of the Dockerfile's final stage.
func dockerfileFinalStage(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage := map[string][]string{}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			stage = map[string][]string{}
		}
		stage[instr] = append(stage[instr], strings.Join(strings.Fields(rest), " "))
	}
	return stage
}

func TestDockerfile_FinalImage(t *testing.T) {
	st := dockerfileFinalStage(t)
	def, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	from := strings.Join(st["FROM"], "")
	if !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("final image %q is not distroless static or scratch", from)
	}
	env := strings.Join(st["ENV"], " ")
	// The image may start as root only to hand the volume to an
	// unprivileged user it then becomes (RUN_AS); otherwise USER must be
	// unprivileged.
	if u := strings.Join(st["USER"], ""); u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		if !strings.Contains(env, "RUN_AS=65532:65532") {
			t.Errorf("USER %q without RUN_AS: the server would run as root", u)
		}
	}
	for _, want := range []string{"DATABASE_PATH=/data/confab.db", "PORT=" + strconv.Itoa(def.Port)} {
		if !strings.Contains(env, want) {
			t.Errorf("ENV %q lacks %s", env, want)
		}
	}
	checks := []struct{ instr, want string }{
		{"EXPOSE", strconv.Itoa(def.Port)},
		{"VOLUME", "/data"},
		{"HEALTHCHECK", `"healthcheck"]`},
		{"STOPSIGNAL", "SIGTERM"},
		{"COPY", "--chown=65532:65532"},
	}
	for _, c := range checks {
		if !strings.Contains(strings.Join(st[c.instr], " "), c.want) {
			t.Errorf("%s %v lacks %q", c.instr, st[c.instr], c.want)
		}
	}
}

// A real server process.

func TestDeploy_FlyAndRenderAgreeWithTheServer(t *testing.T) {
	def, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t)
	const healthPath = "/healthz"
	if resp := srv.Do(t, http.MethodGet, healthPath, "", nil); resp.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", healthPath, resp.Status)
	}

	t.Run("fly.toml", func(t *testing.T) {
		var fly struct {
			KillSignal  string            `toml:"kill_signal"`
			KillTimeout string            `toml:"kill_timeout"`
			Env         map[string]string `toml:"env"`
			Build       struct{ Dockerfile string }
			Metrics     struct {
				Port int
				Path string
			}
			Mounts      []struct{ Source, Destination string }
			HTTPService struct {
				InternalPort       int `toml:"internal_port"`
				AutoStopMachines   any `toml:"auto_stop_machines"`
				MinMachinesRunning int `toml:"min_machines_running"`
				Checks             []struct {
					Method, Path string
				}
			} `toml:"http_service"`
		}
		if _, err := toml.DecodeFile(filepath.Join(Root(t), "fly.toml"), &fly); err != nil {
			t.Fatal(err)
		}
		if fly.HTTPService.InternalPort != def.Port || fly.Env["PORT"] != strconv.Itoa(def.Port) {
			t.Errorf("internal_port %d, PORT %q; the server listens on %d", fly.HTTPService.InternalPort, fly.Env["PORT"], def.Port)
		}
		if len(fly.Mounts) != 1 || fly.Mounts[0].Destination != "/data" || filepath.Dir(fly.Env["DATABASE_PATH"]) != "/data" {
			t.Errorf("mounts %+v, DATABASE_PATH %q: the database must be on the volume", fly.Mounts, fly.Env["DATABASE_PATH"])
		}
		if len(fly.HTTPService.Checks) == 0 || fly.HTTPService.Checks[0].Path != healthPath {
			t.Errorf("checks %+v", fly.HTTPService.Checks)
		}
		if fly.KillSignal != "SIGTERM" {
			t.Errorf("kill_signal %q", fly.KillSignal)
		}
		kill, err1 := time.ParseDuration(fly.KillTimeout)
		drain, err2 := time.ParseDuration(fly.Env["SHUTDOWN_TIMEOUT"])
		if err1 != nil || err2 != nil || kill <= drain {
			t.Errorf("kill_timeout %q must exceed SHUTDOWN_TIMEOUT %q", fly.KillTimeout, fly.Env["SHUTDOWN_TIMEOUT"])
		}
		if fly.HTTPService.AutoStopMachines != "off" && fly.HTTPService.MinMachinesRunning < 1 {
			t.Errorf("machines may be auto-stopped with sockets open: %v, %d", fly.HTTPService.AutoStopMachines, fly.HTTPService.MinMachinesRunning)
		}
		if fly.Env["TRUST_PROXY"] != "true" {
			t.Errorf("TRUST_PROXY %q", fly.Env["TRUST_PROXY"])
		}
		for _, secret := range []string{"JWT_SECRET", "METRICS_TOKEN"} {
			if _, ok := fly.Env[secret]; ok {
				t.Errorf("%s is in fly.toml: it belongs in fly secrets", secret)
			}
		}
		// Fly scrapes /metrics on its private network, which the server
		// serves without a token.
		if fly.Metrics.Port != def.Port || fly.Metrics.Path != "/metrics" {
			t.Errorf("[metrics] %+v: Fly would scrape nothing; the server serves /metrics on %d", fly.Metrics, def.Port)
		}
		if fly.Build.Dockerfile != "Dockerfile" {
			t.Errorf("build.dockerfile %q", fly.Build.Dockerfile)
		}
		checkEnv(t, fly.Env)
	})

	t.Run("render.yaml", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(Root(t), "render.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var bp struct {
			Services []struct {
				Type, Name, Runtime     string
				DockerfilePath          string `yaml:"dockerfilePath"`
				HealthCheckPath         string `yaml:"healthCheckPath"`
				MaxShutdownDelaySeconds int    `yaml:"maxShutdownDelaySeconds"`
				Disk                    struct {
					Name      string
					MountPath string `yaml:"mountPath"`
					SizeGB    int    `yaml:"sizeGB"`
				}
				EnvVars []struct {
					Key, Value    string
					GenerateValue bool `yaml:"generateValue"`
				} `yaml:"envVars"`
			}
		}
		if err := yaml.Unmarshal(b, &bp); err != nil {
			t.Fatal(err)
		}
		if len(bp.Services) != 1 {
			t.Fatalf("%d services", len(bp.Services))
		}
		s := bp.Services[0]
		if s.Type != "web" || s.Runtime != "docker" || s.DockerfilePath != "./Dockerfile" {
			t.Errorf("service %s/%s from %q", s.Type, s.Runtime, s.DockerfilePath)
		}
		if s.HealthCheckPath != healthPath || s.Disk.MountPath != "/data" || s.Disk.SizeGB < 1 {
			t.Errorf("health %q, disk %+v", s.HealthCheckPath, s.Disk)
		}
		env := map[string]string{}
		generated := map[string]bool{}
		for _, v := range s.EnvVars {
			env[v.Key], generated[v.Key] = v.Value, v.GenerateValue
		}
		if env["PORT"] != strconv.Itoa(def.Port) || filepath.Dir(env["DATABASE_PATH"]) != "/data" || env["TRUST_PROXY"] != "true" {
			t.Errorf("env %v", env)
		}
		if !generated["JWT_SECRET"] || env["JWT_SECRET"] != "" {
			t.Errorf("JWT_SECRET must be generateValue: true with no value")
		}
		drain, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
		if err != nil || time.Duration(s.MaxShutdownDelaySeconds)*time.Second <= drain {
			t.Errorf("maxShutdownDelaySeconds %d must exceed SHUTDOWN_TIMEOUT %q", s.MaxShutdownDelaySeconds, env["SHUTDOWN_TIMEOUT"])
		}
		checkEnv(t, env)
	})
}

// checkEnv loads a deploy file's environment through config.Load: every
// value it sets must be valid.
func checkEnv(t *testing.T, env map[string]string) {
	t.Helper()
	withSecrets := map[string]string{"JWT_SECRET": strings.Repeat("s", 32), "METRICS_TOKEN": strings.Repeat("m", 32)}
	for k, v := range env {
		if v != "" {
			withSecrets[k] = v
		}
	}
	if _, err := config.Load(func(k string) string { return withSecrets[k] }); err != nil {
		t.Errorf("the deploy environment does not load: %v", err)
	}
}
