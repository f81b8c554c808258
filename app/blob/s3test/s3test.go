// Package s3test starts a real S3 server for tests: versitygw, an S3
// gateway, over a temp folder.
package s3test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
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
	root := t.TempDir()
	addr := "127.0.0.1:" + freePort(t)
	logs := &logBuffer{}
	cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--region", region,
		"--port", addr, "--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
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
		case <-done:
			t.Fatalf("versitygw exited: %v\n%s", cmd.ProcessState, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer at %s: %v\n%s", endpoint, err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	client, err := minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		t.Fatalf("create bucket %q: %v\n%s", bucket, err, logs)
	}
	return blob.S3Config{
		Endpoint:  endpoint,
		Bucket:    bucket,
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    region,
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
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
