// Package s3test starts a real S3 server for tests: versitygw, an S3
// gateway, over a temp folder.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/confab/confab/app/blob"
)

// EnvVersitygw names the versitygw binary when it is not versitygw on
// PATH (.ci/run installs it there).
const EnvVersitygw = "CONFAB_VERSITYGW"

// Version is the versitygw release .ci/run installs.
const Version = "v1.8.0"

const (
	accessKey = "confabtest"
	secretKey = "confabtest-secret"
	bucket    = "confab-test"
	region    = "us-east-1"
)

// Start starts versitygw with its posix backend on a temp folder and a
// free port, waits until it answers, creates a bucket and returns the
// config that reaches it. The server stops when t ends. Without the
// binary Start skips t, except under CI=true, where it fails: CI never
// passes by skipping.
func Start(t testing.TB) blob.S3Config {
	t.Helper()
	bin := binary(t)
	g, err := launch(bin, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	return g.cfg
}

// shared is the one versitygw of a test process that Shared starts.
var shared struct {
	once sync.Once
	g    *gateway
	err  error
	n    atomic.Int64
}

// Shared returns a config that reaches a versitygw shared by the whole
// test process (started by the first call, stopped when the process
// ends), under a key prefix of its own: for suites that start many
// servers. It skips or fails as Start does without the binary.
func Shared(t testing.TB) blob.S3Config {
	t.Helper()
	bin := binary(t)
	shared.once.Do(func() {
		root, err := os.MkdirTemp("", "confab-s3test-")
		if err != nil {
			shared.err = err
			return
		}
		shared.g, shared.err = launch(bin, root, true)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	cfg := shared.g.cfg
	cfg.Prefix = "t" + strconv.FormatInt(shared.n.Add(1), 10) + "/"
	return cfg
}

// binary is the versitygw to run; without one it skips t, or fails it
// under CI=true.
func binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvVersitygw)
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		msg := "needs versitygw on PATH or " + EnvVersitygw + " (go install " +
			"github.com/versity/versitygw/cmd/versitygw@" + Version + ", as .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	return bin
}

// gateway is a running versitygw.
type gateway struct {
	cfg  blob.S3Config
	cmd  *exec.Cmd
	done chan struct{}
}

func (g *gateway) stop() {
	g.cmd.Process.Kill()
	<-g.done
}

// launch starts versitygw over root, waits until it answers and creates
// the bucket. With orphanProof, the gateway dies with the test process
// (dieWithParent), which no cleanup of a test stops.
func launch(bin, root string, orphanProof bool) (*gateway, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logs := &logBuffer{}
	cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--region", region,
		"--port", addr, "--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = logs, logs
	g := &gateway{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if orphanProof {
			dieWithParent(cmd)
		}
		if err := cmd.Start(); err != nil {
			started <- err
			close(g.done)
			return
		}
		started <- nil
		cmd.Wait()
		close(g.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	endpoint := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Any answer, 403 included, says it serves.
		resp, err := http.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("versitygw exited: %v\n%s", cmd.ProcessState, logs)
		default:
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("versitygw did not answer at %s: %v\n%s", endpoint, err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	client, err := minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		g.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		g.stop()
		return nil, fmt.Errorf("create bucket %q: %v\n%s", bucket, err, logs)
	}
	g.cfg = blob.S3Config{
		Endpoint:  endpoint,
		Bucket:    bucket,
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    region,
	}
	return g, nil
}

// freeAddr returns a TCP address on 127.0.0.1 that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// logBuffer collects the server's output, to show when it fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
