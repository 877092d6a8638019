// Package report renders scan results for people and programs: an aligned
// table, tab-separated rows, JSON, CSV, and the status line of a monitoring
// plugin.
//
// The package never prints on its own: every renderer takes an [io.Writer]
// (or returns a string), and the caller decides where output goes. Data is
// meant for stdout, diagnostics for stderr.
//
// # Formats
//
//   - [WriteTable] writes, for a terminal, an aligned table with a header,
//     notes on skipped files and problems, and a totals line; for a pipe,
//     tab-separated rows only, with raw numbers, so that scripts can read it.
//     Both are sorted fullest first.
//   - [WriteJSON] writes the contract's JSON document ([ScanReport]).
//   - [WriteCSV] writes the same fields as the JSON, flattened, with a header
//     row.
//   - [Check] computes a Nagios-style plugin status and its status line.
//
// JSON and CSV keep the order of the [mboxscan.Result] (by path), so that
// two runs diff cleanly.
//
// Strings that come from the file system (paths, owners) can hold anything.
// Where the output is read by a terminal or split on tabs or pipes, a string
// holding control characters or invalid UTF-8 is written Go-quoted instead,
// so that a hostile file name can neither inject terminal escapes nor break
// a row. JSON and CSV carry such strings with their own escaping.
//
// All functions are safe for concurrent use; they do not keep the result.
package report
