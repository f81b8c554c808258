package blob_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/blob"
	"github.com/confab/confab/app/blob/blobtest"
	"github.com/confab/confab/app/blob/s3test"
)

func TestS3(t *testing.T) {
	cfg := s3test.Start(t)
	var n atomic.Int64
	blobtest.Run(t, func(t *testing.T) blob.Store {
		// One server, and a prefix of its own for each subtest's store.
		c := cfg
		c.Prefix = fmt.Sprintf("t%d/", n.Add(1))
		return mustOpenS3(t, c)
	})
}

func mustOpenS3(t *testing.T, cfg blob.S3Config) *blob.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := blob.OpenS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenS3_Misconfigured checks a wrong setting fails at start, with an
// error that names it and never shows the secret.
func TestOpenS3_Misconfigured(t *testing.T) {
	cfg := s3test.Start(t)
	tests := []struct {
		name string
		edit func(c *blob.S3Config)
		want string
	}{
		{"NoEndpoint", func(c *blob.S3Config) { c.Endpoint = "" }, "S3Config.Endpoint"},
		{"EndpointNotURL", func(c *blob.S3Config) { c.Endpoint = "127.0.0.1:7070" }, "S3Config.Endpoint"},
		{"EndpointWithPath", func(c *blob.S3Config) { c.Endpoint += "/bucket" }, "S3Config.Endpoint"},
		{"NothingListens", func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:1" }, "S3Config.Endpoint"},
		{"NoBucket", func(c *blob.S3Config) { c.Bucket = "" }, "S3Config.Bucket"},
		{"AbsentBucket", func(c *blob.S3Config) { c.Bucket = "no-such-bucket" }, "S3Config.Bucket"},
		{"NoAccessKey", func(c *blob.S3Config) { c.AccessKey = "" }, "S3Config.AccessKey"},
		{"WrongAccessKey", func(c *blob.S3Config) { c.AccessKey = "nobody" }, "S3Config.AccessKey"},
		{"NoSecretKey", func(c *blob.S3Config) { c.SecretKey = "" }, "S3Config.SecretKey"},
		{"WrongSecretKey", func(c *blob.S3Config) { c.SecretKey = "wrong-secret-x9" }, "S3Config.SecretKey"},
		{"PrefixFromRoot", func(c *blob.S3Config) { c.Prefix = "/x/" }, "S3Config.Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.edit(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := blob.OpenS3(ctx, c)
			if err == nil {
				t.Fatal("OpenS3: no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %s", msg, tt.want)
			}
			for _, secret := range []string{cfg.SecretKey, "wrong-secret-x9"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows the secret key", msg)
				}
			}
		})
	}
}

// TestS3_ReplacedWhileRead checks a reader that seeks after the blob was
// replaced fails rather than mixing two versions.
func TestS3_ReplacedWhileRead(t *testing.T) {
	s := mustOpenS3(t, s3test.Start(t))
	ctx := context.Background()
	put := func(b byte) {
		t.Helper()
		data := bytes.Repeat([]byte{b}, 100_000)
		if err := s.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	put('1')
	o, err := s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.ReadFull(o, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	put('2')
	if _, err := o.Seek(50_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadFull(o, make([]byte, 10))
	if err == nil || !strings.Contains(err.Error(), "replaced while being read") {
		t.Errorf("read after a replace = %v, want an error saying so", err)
	}
}
