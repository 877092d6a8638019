package config

import "testing"

// FuzzParse: any file content gives a config or an error naming the file,
// never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("roots = [\"/var/mail\"]\nlimit = \"2GiB\"\n[[policy]]\nfolders = [\"*\"]\nolder_than = \"2y\"\n"))
	f.Add([]byte("[lock]\nkinds = [\"dotlock\", \"fcntl\"]\ntimeout = \"30s\"\n"))
	f.Add([]byte("[[policy]]\nolder_than = \"30x\"\n"))
	f.Add([]byte("limit = 5\nwarn = \"x\"\n"))
	f.Add([]byte("= = ="))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err == nil && c == nil {
			t.Error("nil config without an error")
		}
	})
}
