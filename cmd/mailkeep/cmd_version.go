package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the release build:
// -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var version, commit, date string

type versionInfo struct {
	Version, Commit, Date string
}

func (v versionInfo) String() string {
	return fmt.Sprintf("%s (commit %s, built %s)", v.Version, v.Commit, v.Date)
}

// currentVersion returns what the linker set, completed from the build
// information the go command embeds, so that "go install …@v1.2.3" builds
// report v1.2.3 and a local build from a checkout its VCS revision.
func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Date: date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && v.Commit != "" {
			v.Commit += "-dirty"
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.Date == "" {
		v.Date = "unknown"
	}
	return v
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of mailkeep",
		Long: `Print mailkeep's version, the commit it was built from and the build date,
as "mailkeep VERSION (commit COMMIT, built DATE)".

EXIT STATUS
  0  always, unless output fails`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(cmd.OutOrStdout())
		},
	}
}

func runVersion(stdout io.Writer) error {
	_, err := fmt.Fprintf(stdout, "mailkeep %s\n", currentVersion())
	return err
}
