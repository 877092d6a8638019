package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// applyConfigDefaults gives the commands that take mailbox PATHs and
// limits what the configuration file sets, as the CLI contract says: with
// no PATH the configured roots are scanned, and --limit, --warn, --crit,
// --large and --jobs come from the file unless given on the command line;
// notify also takes the [notify] table (to, from, sendmail or smtp, lang,
// template, rate, cc) and path_pattern.
// run and history read the file themselves. Without a file (the default
// one absent or unreadable) nothing changes.
func applyConfigDefaults(cmd *cobra.Command, g *globalOptions) error {
	switch cmd.Name() {
	case "scan", "check", "prune", "notify":
	default:
		return nil
	}
	cfg, err := scanConfig(*g)
	if err != nil {
		if cmd.Name() == "check" {
			return checkUnknown(cmd.OutOrStdout(), err)
		}
		return err
	}
	if cfg.File == "" {
		return nil
	}
	if len(cfg.Roots) > 0 {
		// Globs matching nothing leave nothing to scan, not /var/mail.
		g.roots = append([]string{}, expandRoots(cfg.Roots)...)
	}
	// Value.Set, not FlagSet.Set: the flag still counts as not given.
	set := func(name, value string) error {
		if f := cmd.Flags().Lookup(name); f != nil && !f.Changed {
			return f.Value.Set(value)
		}
		return nil
	}
	values := [][2]string{
		{"limit", strconv.FormatInt(cfg.Limit, 10)},
		{"warn", strconv.FormatFloat(cfg.Warn, 'g', -1, 64)},
		{"crit", strconv.FormatFloat(cfg.Crit, 'g', -1, 64)},
		{"large", strconv.FormatInt(cfg.Large, 10)},
		{"jobs", strconv.Itoa(cfg.Jobs)},
	}
	if cmd.Name() == "notify" {
		// The [notify] table, where it says something.
		n := cfg.Notify
		if cfg.PathPattern != nil {
			values = append(values, [2]string{"path-pattern", cfg.PathPattern.String()})
		}
		for _, kv := range [][2]string{
			{"to", n.To}, {"from", n.From}, {"lang", n.Lang}, {"template", n.Template},
			{"sendmail", n.Sendmail}, {"smtp", n.SMTP}, {"smtp-user", n.SMTPUser},
			{"rate", n.Rate}, {"cc", strings.Join(n.Cc, ",")},
		} {
			if kv[1] != "" {
				values = append(values, kv)
			}
		}
	}
	for _, kv := range values {
		if err := set(kv[0], kv[1]); err != nil {
			return usageErrorf("%s: %s = %s: %w", cfg.File, kv[0], kv[1], err)
		}
	}
	return nil
}
