package blob_test

import (
	"testing"

	"github.com/confab/confab/app/blob"
	"github.com/confab/confab/app/blob/blobtest"
)

func TestDir(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return mustOpenDir(t, t.TempDir())
	})
}

func mustOpenDir(t *testing.T, path string) *blob.Dir {
	t.Helper()
	d, err := blob.OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
