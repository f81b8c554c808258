package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// wantLines returns the lines of path marked with a "// want" comment.
func wantLines(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []int
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), "// want") {
			lines = append(lines, n)
		}
	}
	return lines
}

func TestCheckFile(t *testing.T) {
	for _, name := range []string{"bad_test.go", "good_test.go"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			findings, err := checkFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, f := range findings {
				got = append(got, f.pos.Line)
				if !strings.HasPrefix(f.String(), path+":") {
					t.Errorf("finding %q does not start with file:line", f)
				}
			}
			want := wantLines(t, path)
			if !slices.Equal(got, want) {
				t.Errorf("reported lines %v, want %v:\n%v", got, want, findings)
			}
		})
	}
}

// The tree walk skips testdata, as the go command does: the bad file
// above is never part of a real check.
func TestCheckTree_SkipsTestdata(t *testing.T) {
	findings, err := checkTree(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Errorf("findings in the checker's own folder: %v", findings)
	}
}
