package report

import "testing"

// FuzzParseRate: any text gives a rate or an error, never a panic.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"2/s", "120/m", "1000/h", "0/s", "-1/s", "1e309/s", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseRate(s)
	})
}
