package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// defaultDocsDate dates the man pages when SOURCE_DATE_EPOCH is not set:
// a constant, never the clock, so that two builds of one commit produce
// the same bytes (https://reproducible-builds.org/docs/source-date-epoch/).
var defaultDocsDate = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// newGendocsCommand builds the hidden command the release runs to write the
// man pages and shell completions that the archives and packages ship.
func newGendocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gendocs DIR",
		Short:  "Write man pages and shell completions into DIR",
		Hidden: true,
		Long: `Gendocs writes a man page for each command into DIR/man (mailkeep.1,
mailkeep-scan.1 …) and the bash, zsh and fish completions into
DIR/completions (mailkeep.bash, _mailkeep, mailkeep.fish), replacing the
mailkeep man pages already there.

The pages are dated from SOURCE_DATE_EPOCH (seconds since 1970) when it is
set, else from a fixed date, so that the output depends only on the source.

EXIT STATUS
  0  the files were written
  1  writing failed, or SOURCE_DATE_EPOCH is not a number
  2  usage error`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGendocs(cmd.Root(), args[0], os.Getenv("SOURCE_DATE_EPOCH"))
		},
	}
}

// runGendocs writes root's man pages and completions under dir, dated from
// epoch (SOURCE_DATE_EPOCH) when it is not empty.
func runGendocs(root *cobra.Command, dir, epoch string) error {
	date := defaultDocsDate
	if epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		date = time.Unix(sec, 0).UTC()
	}

	manDir := filepath.Join(dir, "man")
	if err := os.MkdirAll(manDir, 0o755); err != nil {
		return fmt.Errorf("gendocs: %w", err)
	}
	// A command removed since the last run must not leave its page behind.
	// Only mailkeep's own pages go: DIR may hold other files.
	stale, err := filepath.Glob(filepath.Join(manDir, "mailkeep*.1"))
	if err != nil {
		return fmt.Errorf("gendocs: %w", err)
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("gendocs: remove stale page: %w", err)
		}
	}
	source := "mailkeep"
	if version != "" {
		source += " " + version
	}
	header := &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  source,
		Manual:  "mailkeep manual",
	}
	forEachCommand(root, func(c *cobra.Command) { c.Long = manMarkdown(c.Long) })
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("gendocs: write man pages to %s: %w", manDir, err)
	}

	compDir := filepath.Join(dir, "completions")
	if err := os.MkdirAll(compDir, 0o755); err != nil {
		return fmt.Errorf("gendocs: %w", err)
	}
	completions := []struct {
		name string
		gen  func(*bytes.Buffer) error
	}{
		{"mailkeep.bash", func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{"_mailkeep", func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{"mailkeep.fish", func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
	}
	for _, c := range completions {
		var b bytes.Buffer
		if err := c.gen(&b); err != nil {
			return fmt.Errorf("gendocs: generate %s: %w", c.name, err)
		}
		if b.Len() == 0 {
			return fmt.Errorf("gendocs: generate %s: empty output", c.name)
		}
		path := filepath.Join(compDir, c.name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("gendocs: %w", err)
		}
	}
	return nil
}

func forEachCommand(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		forEachCommand(sub, f)
	}
}

var manHeading = regexp.MustCompile(`^[A-Z][A-Z ]*[A-Z]$`)

// manMarkdown turns the plain text of a command's Long help, which cobra's
// doc package reads as markdown, into markdown that renders as the terminal
// help does: indented lines (the EXIT STATUS and format tables) become
// preformatted blocks instead of being refilled into one paragraph, and a
// line in capitals (EXIT STATUS) becomes a subsection heading.
func manMarkdown(long string) string {
	var out []string
	blank := func() {
		if len(out) > 0 && out[len(out)-1] != "" {
			out = append(out, "")
		}
	}
	inBlock := false
	for _, line := range strings.Split(long, "\n") {
		switch {
		case line == "":
			out = append(out, line)
		case line[0] == ' ' || line[0] == '\t':
			if !inBlock {
				blank()
				inBlock = true
			}
			out = append(out, "    "+line)
		case manHeading.MatchString(line):
			blank()
			out = append(out, "## "+line, "")
			inBlock = false
		default:
			if inBlock {
				blank()
				inBlock = false
			}
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
