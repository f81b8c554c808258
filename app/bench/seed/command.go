package seed

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Summary is the line confab bench --help shows for seed.
const Summary = "write a new SQLite file of N users, conversations and messages (no server involved)"

const help = `Writes a new SQLite file for a Confab server to start on: --users users
seed_1 … seed_N (user id n, password "` + Password + `"), --conversations
conversations (85% direct, 15% groups of 3–50 members) and --messages
messages spread over them, a few conversations much busier than most.
seed_1 is in 10,000 conversations, seed_2 in 2,000 and seed_3 in 1,000
(fewer, in proportion, when --conversations is below 50,000).

The schema is the server's (its migrations run first), and every count
and position the server keeps beside the messages (sequence numbers, last
message, activity, member counts, read marks, unread counts) is as if the
messages had been sent through the API. The same --seed writes the same
rows. It refuses a --db that exists.

  confab bench seed --db /tmp/confab-10m.db
  DATABASE_PATH=/tmp/confab-10m.db confab`

// Run runs confab bench seed with args (its flags) and returns the exit
// status: 0, 1 when the seed failed, 2 for a wrong use.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("confab bench seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	cfg := Config{Progress: stderr}
	fs.StringVar(&cfg.Path, "db", "", "the SQLite file to create (required; it must not exist)")
	fs.IntVar(&cfg.Users, "users", DefaultUsers, "users seed_1 … seed_N")
	fs.IntVar(&cfg.Conversations, "conversations", DefaultConversations, "conversations, 85% direct and 15% groups")
	fs.IntVar(&cfg.Messages, "messages", DefaultMessages, "messages, in all")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "picks the data: the same seed and counts write the same rows")
	fs.IntVar(&cfg.BigGroup, "big-group", 0, "add one group of users seed_1 … seed_N, beyond --conversations (0: none)")
	fs.StringVar(&cfg.Words, "words", WordsChat, "message words: "+WordsChat+" (Zipf's law over 5,000 words, as in real text) or "+WordsUniform+" (59 common words, each in about 11% of messages: harsher on search)")
	fs.DurationVar(&cfg.ProgressEvery, "progress", 5*time.Second, "print a progress line to stderr this often (0: never)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: confab bench seed --db PATH [flags]\n\n%s\n\nFlags:\n", help)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, "Run 'confab bench seed --help' for usage.")
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "confab bench seed: %s\nRun 'confab bench seed --help' for usage.\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case cfg.Path == "":
		return usage("--db is required: the SQLite file to create")
	}
	if err := cfg.check(); err != nil {
		return usage(err.Error())
	}
	res, err := Write(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "confab bench seed: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	fmt.Fprintf(stdout, "confab bench seed wrote %s (%.1f s)\n\n", cfg.Path, res.Seconds)
	for _, r := range [][2]string{
		{"users", fmt.Sprint(res.Users)},
		{"conversations", fmt.Sprint(res.Conversations)},
		{"participants", fmt.Sprint(res.Participants)},
		{"messages", fmt.Sprint(res.Messages)},
		{"rows", fmt.Sprint(res.Rows)},
		{"elapsed", fmt.Sprintf("%.1f s", res.Seconds)},
		{"rows/s", fmt.Sprintf("%.0f", res.RowsPerSecond)},
		{"file size", fmt.Sprintf("%.2f GB (%d bytes)", float64(res.Bytes)/1e9, res.Bytes)},
	} {
		fmt.Fprintf(stdout, "  %-13s  %s\n", r[0], r[1])
	}
	return 0
}
