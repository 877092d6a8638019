package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gendocs runs "mailkeep gendocs dir" in process and returns the files it
// wrote, by path relative to dir.
func gendocs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &globalOptions{}, []string{"gendocs", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("gendocs: exit %d\nstderr: %s", code, stderr.String())
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("gendocs printed stdout %q, stderr %q; want nothing", stdout.String(), stderr.String())
	}
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGendocs(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	files := gendocs(t, t.TempDir())

	for _, name := range []string{
		"man/mailkeep.1", "man/mailkeep-scan.1", "man/mailkeep-check.1", "man/mailkeep-version.1",
		"completions/mailkeep.bash", "completions/_mailkeep", "completions/mailkeep.fish",
	} {
		if len(files[name]) == 0 {
			t.Errorf("%s missing or empty", name)
		}
	}
	for name := range files {
		if strings.Contains(name, "gendocs") {
			t.Errorf("%s: the hidden gendocs command has a page", name)
		}
	}

	scan := string(files["man/mailkeep-scan.1"])
	for _, want := range []string{
		`.TH "MAILKEEP-SCAN" "1" "Jan 2026" "mailkeep" "mailkeep manual"`,
		".SH EXIT STATUS",
		`\fB--limit\fP`,
	} {
		if !strings.Contains(scan, want) {
			t.Errorf("mailkeep-scan.1 lacks %q:\n%s", want, scan)
		}
	}
	if strings.Contains(scan, "Auto generated") {
		t.Error("mailkeep-scan.1 carries cobra's auto-generated tag")
	}
	for name, want := range map[string]string{
		"completions/mailkeep.bash": "__start_mailkeep",
		"completions/_mailkeep":     "#compdef mailkeep",
		"completions/mailkeep.fish": "complete -c mailkeep",
	} {
		if !bytes.Contains(files[name], []byte(want)) {
			t.Errorf("%s lacks %q", name, want)
		}
	}
}

// Two runs must give the same bytes, or the packages are not reproducible.
func TestGendocsReproducible(t *testing.T) {
	for _, epoch := range []string{"", "1700000000"} {
		t.Run("SOURCE_DATE_EPOCH="+epoch, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", epoch)
			dir := t.TempDir()
			first := gendocs(t, dir)
			again := gendocs(t, dir)
			other := gendocs(t, t.TempDir())
			for _, files := range []map[string][]byte{again, other} {
				if len(files) != len(first) {
					t.Fatalf("%d files, then %d", len(first), len(files))
				}
				for name, b := range first {
					if !bytes.Equal(files[name], b) {
						t.Errorf("%s differs between runs", name)
					}
				}
			}
		})
	}
}

func TestGendocsSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // 2023-11-14
	files := gendocs(t, t.TempDir())
	if want := `"Nov 2023"`; !bytes.Contains(files["man/mailkeep.1"], []byte(want)) {
		t.Errorf("mailkeep.1 is not dated %s:\n%s", want, files["man/mailkeep.1"])
	}
}

func TestGendocsRemovesStalePages(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	man := filepath.Join(dir, "man")
	if err := os.MkdirAll(man, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mailkeep-gone.1", "other.1"} {
		if err := os.WriteFile(filepath.Join(man, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := gendocs(t, dir)
	if _, ok := files["man/mailkeep-gone.1"]; ok {
		t.Error("the page of a removed command is still there")
	}
	if _, ok := files["man/other.1"]; !ok {
		t.Error("gendocs removed a page that is not mailkeep's")
	}
}

func TestGendocsErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		epoch string
		args  []string
		code  int
		want  string
	}{
		{"no DIR", "", []string{"gendocs"}, 2, "accepts 1 arg(s)"},
		{"bad epoch", "yesterday", []string{"gendocs", t.TempDir()}, 1, `SOURCE_DATE_EPOCH "yesterday"`},
		{"DIR is a file", "", []string{"gendocs", file}, 1, "gendocs: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.epoch)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), &globalOptions{}, tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr containing %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

func TestManMarkdown(t *testing.T) {
	in := "Intro line.\nFormats:\n  a  one\n     more\n  b  two\nAfter.\n\nEXIT STATUS\n  0  ok"
	want := "Intro line.\nFormats:\n\n      a  one\n         more\n      b  two\n\nAfter.\n\n## EXIT STATUS\n\n      0  ok"
	if got := manMarkdown(in); got != want {
		t.Errorf("manMarkdown:\n%s\nwant:\n%s", got, want)
	}
}
