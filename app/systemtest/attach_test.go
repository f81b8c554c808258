package systemtest

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/blob/s3test"
	"github.com/confab/confab/app/media/mediatest"
)

// On several nodes files go to the object store: a photo uploaded and
// sent (over the socket) on one node is served, stripped of its GPS tags,
// by the other; a node with no object store refuses uploads rather than
// keep a file only it has.
func TestMultiNode_AttachmentsThroughS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several confab processes, Postgres, Redis and an S3 server")
	}
	s3 := s3test.Start(t)
	c := startClusterEnv(t, 2, nil, "S3_ENDPOINT="+s3.Endpoint, "S3_BUCKET="+s3.Bucket,
		"S3_ACCESS_KEY="+s3.AccessKey, "S3_SECRET_KEY="+s3.SecretKey, "S3_REGION="+s3.Region)
	alice, bob := c.register("alice_f", 0), c.register("bob_f", 1)
	conv := c.group(alice, []mnUser{alice, bob})

	// Upload on node 0.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "IMG_0042.jpg")
	fw.Write(mediatest.JPEGWithGPS(320, 240, 1))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.nodes[0].URL+"/api/uploads/", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+alice.access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload on node 0: %d %s", resp.StatusCode, b)
	}
	id := int64(0)
	fmt.Sscanf(strings.SplitN(string(b), `"id":`, 2)[1], "%d", &id)

	// Sent over alice's socket on node 0; bob, not joined, on node 1 is
	// notified with the message and its attachment.
	a := dialNode(t, c.nodes[0], alice)
	bb := dialNode(t, c.nodes[1], bob)
	a.conn.WriteJSON(map[string]any{"type": "new_message", "conversation_id": conv, "content": "", "attachment_ids": []int64{id}})
	var url, thumb string
	eventually(t, 10*time.Second, "bob (node 1) is notified of the photo sent on node 0", func() bool {
		return bb.sawEvent("notification", func(f map[string]any) bool {
			msg, _ := f["message"].(map[string]any)
			as, _ := msg["attachments"].([]any)
			if len(as) != 1 {
				return false
			}
			at := as[0].(map[string]any)
			url, _ = at["url"].(string)
			thumb, _ = at["thumbnail_url"].(string)
			return at["id"] == float64(id) && url != "" && thumb != ""
		})
	})
	for _, u := range []string{url, thumb} {
		resp, err := http.Get(c.nodes[1].URL + u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("GET %s on node 1: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if bytes.Contains(got, []byte("GPS")) || bytes.Contains(got, []byte("ConfabCam")) {
			t.Errorf("%s still holds the photo's metadata", u)
		}
	}

	// A node of the same cluster without an object store.
	env := slices.DeleteFunc(slices.Clone(c.env), func(kv string) bool { return strings.HasPrefix(kv, "S3_") })
	lone := Start(t, c.bin, env, "serve")
	c.waitReady(lone, "ready", 10*time.Second)
	code, m := lone.Call(t, http.MethodPost, "/api/uploads/?name=x.txt", alice.access, "a file")
	if code != http.StatusServiceUnavailable || m["code"] != "uploads_unavailable" {
		t.Errorf("upload on a node without an object store: %d %v, want 503 uploads_unavailable", code, m)
	}
}
