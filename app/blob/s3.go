package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Deadlines of the S3 client, besides the caller's ctx. A transfer may
// run as long as it keeps moving; a silent server fails it after
// s3IdleTimeout.
const (
	s3DialTimeout           = 10 * time.Second
	s3TLSHandshakeTimeout   = 10 * time.Second
	s3ResponseHeaderTimeout = 30 * time.Second // after the request is sent
	s3IdleTimeout           = 60 * time.Second // no byte either way on a connection
	s3IdleConnTimeout       = 50 * time.Second // pooled connections close before s3IdleTimeout
	s3OpTimeout             = 30 * time.Second // a whole Delete, stat or probe
	s3MaxRetries            = 3

	// s3MaxSinglePut is the largest blob sent in one streamed PUT (Amazon's
	// limit). Larger ones go in parts, each buffered in memory.
	s3MaxSinglePut = 5 << 30
)

// S3Config says where an S3 store keeps its blobs.
type S3Config struct {
	Endpoint  string // URL: "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:7070"
	Bucket    string
	AccessKey string
	SecretKey string
	Region    string // may be empty: the client asks the bucket's region
	Prefix    string // optional key prefix inside the bucket, e.g. "confab/"
}

// S3 keeps blobs as objects in an S3-compatible bucket, key k at object
// Prefix+k. Amazon S3 is addressed by virtual host, any other endpoint by
// path. Objects S3 writes are whole or absent: a PUT the server did not
// receive completely is not stored.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

var _ Store = (*S3)(nil)

// OpenS3 connects and checks the bucket exists and is writable (it puts
// and deletes a probe object), so a misconfiguration fails at start with
// an error naming the S3Config setting.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	switch {
	case cfg.Endpoint == "":
		return nil, errors.New("blob: S3Config.Endpoint is empty")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("blob: S3Config.Endpoint %q: want a URL like https://s3.eu-west-1.amazonaws.com", cfg.Endpoint)
	case u.User != nil:
		return nil, errors.New("blob: S3Config.Endpoint must not hold credentials: use AccessKey and SecretKey")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "":
		return nil, fmt.Errorf("blob: S3Config.Endpoint %q: want no path or query (the bucket goes in S3Config.Bucket)", cfg.Endpoint)
	case cfg.Bucket == "":
		return nil, errors.New("blob: S3Config.Bucket is empty")
	case cfg.AccessKey == "":
		return nil, errors.New("blob: S3Config.AccessKey is empty")
	case cfg.SecretKey == "":
		return nil, errors.New("blob: S3Config.SecretKey is empty")
	case strings.HasPrefix(cfg.Prefix, "/"):
		return nil, fmt.Errorf("blob: S3Config.Prefix %q must not start with /", cfg.Prefix)
	}
	lookup := minio.BucketLookupPath
	if strings.HasSuffix(u.Hostname(), ".amazonaws.com") {
		lookup = minio.BucketLookupAuto // virtual host: path style is deprecated there
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    s3Transport(),
		MaxRetries:   s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3Config.Endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix}
	if err := s.probe(ctx); err != nil {
		return nil, fmt.Errorf("blob: S3 bucket %q at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	return s, nil
}

// probe checks the bucket takes a put and a delete, which also says
// whether it exists: an object's PUT answers with an error code, where a
// bucket's HEAD has only a status. The probe
// object's name starts with ".", so no key can name it and Walk skips it.
func (s *S3) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	var b [8]byte
	rand.Read(b[:])
	name := s.prefix + ".probe-" + hex.EncodeToString(b[:])
	const body = "confab blob probe"
	_, err := s.client.PutObject(ctx, s.bucket, name, strings.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		return fmt.Errorf("put a probe object: %w", explainS3(err))
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete the probe object: %w", explainS3(err))
	}
	return nil
}

// explainS3 adds to a startup error the setting that most likely caused
// it. S3 error responses carry no credential, only codes and messages.
func explainS3(err error) error {
	var hint string
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter from versitygw
		hint = "check S3Config.AccessKey"
	case "SignatureDoesNotMatch":
		hint = "check S3Config.SecretKey"
	case "AccessDenied":
		hint = "check S3Config.AccessKey, S3Config.SecretKey and the bucket's policy"
	case "NoSuchBucket":
		hint = "check S3Config.Bucket; blob does not create it"
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
		hint = "check S3Config.Region"
	default:
		if resp.StatusCode == http.StatusForbidden {
			hint = "check S3Config.AccessKey, S3Config.SecretKey and the bucket's policy"
			break
		}
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			hint = "check S3Config.Endpoint"
		}
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// s3Transport is an HTTP transport whose every step has a deadline, so a
// dead or silent server fails a call even when the caller's ctx has none.
func s3Transport() *http.Transport {
	dialer := &net.Dialer{Timeout: s3DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c}, nil
		},
		TLSHandshakeTimeout:   s3TLSHandshakeTimeout,
		ResponseHeaderTimeout: s3ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       s3IdleConnTimeout,
		MaxIdleConnsPerHost:   32,
		// Bodies are blobs, sent and ranged as they are.
		DisableCompression: true,
	}
}

// idleConn fails a connection on which nothing moved, either way, for
// s3IdleTimeout: a transfer stalled midway, which no other deadline of
// the transport covers. Every read or write pushes the deadline of both
// out, so a long upload keeps alive the read that waits for its answer.
type idleConn struct {
	net.Conn
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(s3IdleTimeout))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(s3IdleTimeout))
	return c.Conn.Write(p)
}

// Put uploads the blob with its exact size: up to 5 GiB in one streamed
// PUT, which the server stores whole or not at all; a reader that fails,
// or has fewer or more than size bytes, aborts the request before its
// last byte is sent. Larger blobs go as a multipart upload, which is
// aborted on failure and appears only when completed.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	return nil
}

func (s *S3) put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	src := newExactReader(r, size)
	if size == 0 {
		// An empty PUT sends no body, so nothing would read r.
		if err := src.checkEnd(); err != nil {
			return err
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, src, size, minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: size <= s3MaxSinglePut,
	})
	switch {
	case src.err != nil:
		return src.err // the reader's fault: say so rather than the transport's view
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

// Open opens the object; it reads lazily, in ranged GETs after a Seek. The
// ctx given to Open also governs the Object's reads. Returns ErrNotFound
// when absent.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	o, err := s.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", key, err)
	}
	return o, nil
}

func (s *S3) open(ctx context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := &s3Object{ctx: ctx, core: minio.Core{Client: s.client}, bucket: s.bucket, name: s.prefix + key}
	body, info, _, err := o.core.GetObject(ctx, o.bucket, o.name, minio.GetObjectOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, ErrNotFound
		}
		return nil, err
	}
	o.body, o.etag, o.size = body, info.ETag, info.Size
	return o, nil
}

// s3Object reads an object from one GET, kept from Open for as long as
// the reads follow on from each other; a Read after a Seek elsewhere
// sends a ranged GET that must match the first one's ETag, so a reader
// never mixes two versions of a replaced blob (it fails instead). Like
// an *os.File, it is for one goroutine at a time.
type s3Object struct {
	ctx          context.Context
	core         minio.Core
	bucket, name string
	etag         string
	size         int64
	off          int64         // where the next Read reads
	body         io.ReadCloser // the current GET's body, nil if none
	bodyOff      int64         // where body's next byte is
	closed       bool
}

func (o *s3Object) Size() int64 { return o.size }

func (o *s3Object) Read(p []byte) (int, error) {
	switch {
	case o.closed:
		return 0, fmt.Errorf("blob: read %q: %w", o.name, os.ErrClosed)
	case o.off >= o.size:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if o.body != nil && o.bodyOff != o.off {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		var opts minio.GetObjectOptions
		opts.SetMatchETag(o.etag)
		if o.off > 0 {
			opts.SetRange(o.off, 0)
		}
		body, _, _, err := o.core.GetObject(o.ctx, o.bucket, o.name, opts)
		if err != nil {
			if minio.ToErrorResponse(err).Code == minio.PreconditionFailed {
				err = errors.New("replaced while being read")
			}
			return 0, fmt.Errorf("blob: read %q at %d: %w", o.name, o.off, err)
		}
		o.body, o.bodyOff = body, o.off
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff = o.off
	switch {
	case err == io.EOF && o.off < o.size:
		return n, fmt.Errorf("blob: read %q: %w after %d of %d bytes", o.name, io.ErrUnexpectedEOF, o.off, o.size)
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		return n, fmt.Errorf("blob: read %q at %d: %w", o.name, o.off, err)
	}
	return n, nil
}

// Seek only moves the offset; the next Read fetches from there.
func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, fmt.Errorf("blob: seek %q: invalid whence %d", o.name, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("blob: seek %q: negative position %d", o.name, abs)
	}
	o.off = abs
	return abs, nil
}

func (o *s3Object) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.body != nil {
		return o.body.Close()
	}
	return nil
}

// Delete removes the object; S3 answers a delete of an absent object with
// success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

// Walk lists the objects under the prefix, skipping those whose names
// are not valid keys (the probe, or anything else sharing the bucket).
func (s *S3) Walk(ctx context.Context, fn func(key string, size int64) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: walk: %w", err)
	}
	// Stop the listing's requests when fn stops the walk.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if info.Err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("blob: walk: %w", ctx.Err())
			}
			return fmt.Errorf("blob: walk bucket %q prefix %q: %w", s.bucket, s.prefix, info.Err)
		}
		key, ok := strings.CutPrefix(info.Key, s.prefix)
		if !ok || CheckKey(key) != nil {
			continue
		}
		if err := fn(key, info.Size); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: walk: %w", err)
	}
	return nil
}
