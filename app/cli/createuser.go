package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/app/server"
)

// createUserCmd is `confab createuser`: an account made with the API's
// rules, its password read from stdin.
func createUserCmd() command {
	return command{
		name: "createuser", args: "--username NAME [--staff]", summary: "create an account", failCode: exitConfig,
		help: `Creates an account with the same rules as POST /api/auth/register/. The
password is never an argument (argv is visible to every user of the
machine): it is read from standard input (its first line), or asked for
twice without echo when standard input is a terminal. With --staff the
account is staff (it may moderate: /api/admin/ and the console's Staff
view), which the audit log records.

  printf '%s\n' "$PASSWORD" | confab createuser --username alice --staff`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file`")
			username := fs.String("username", "", "the new account's `name` (required)")
			display := fs.String("display-name", "", "display `name` (default: the username)")
			staff := fs.Bool("staff", false, "make the account staff (a moderator)")
			return func(ctx context.Context, args []string) int {
				if len(args) > 0 {
					return c.usageError("createuser", "unexpected argument %q (the password is read from stdin, never argv)", args[0])
				}
				if *username == "" {
					return c.usageError("createuser", "--username is required")
				}
				cfg, code := c.loadConfig("createuser", env)
				if code != exitOK {
					return code
				}
				password, err := c.readPassword()
				if err != nil {
					return c.fail("createuser", err)
				}
				u, err := createUser(ctx, cfg, *username, password, *display, *staff)
				if err != nil {
					return c.fail("createuser", describe(err))
				}
				if *staff {
					fmt.Fprintf(c.stdout, "created staff user %s (id %d)\n", u.Username, u.ID)
				} else {
					fmt.Fprintf(c.stdout, "created user %s (id %d)\n", u.Username, u.ID)
				}
				return exitOK
			}
		},
	}
}

// readPassword reads the password from a terminal without echo (twice),
// or the first line of any other stdin.
func (c *cli) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(c.stderr, "Password (again): ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func createUser(ctx context.Context, cfg config.Config, username, password, display string, staff bool) (chat.User, error) {
	store, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return chat.User{}, err
	}
	defer store.Close()
	// Register also logs the account in; those tokens are thrown away, so
	// they are signed with a throwaway key and their login is revoked.
	key := make([]byte, 32)
	rand.Read(key)
	a := auth.NewService(store, auth.NewHasher(0, auth.HashLimit{}), auth.NewTokens(key, time.Minute, time.Minute, nil), auth.Options{})
	u, pair, err := a.Register(ctx, username, password, display)
	if err != nil {
		return chat.User{}, err
	}
	if err := a.Logout(ctx, pair.Refresh); err != nil {
		return chat.User{}, fmt.Errorf("revoke the registration's login: %w", err)
	}
	if staff {
		if _, _, err := store.SetStaff(ctx, u.Username, true, moderate.Actor{}, time.Now()); err != nil {
			return chat.User{}, fmt.Errorf("make %s staff: %w", u.Username, err)
		}
	}
	return u, nil
}

// describe turns a validation error into one line per field.
func describe(err error) error {
	var ce *chat.Error
	if !errors.As(err, &ce) || len(ce.Fields) == 0 {
		return err
	}
	keys := make([]string, 0, len(ce.Fields))
	for k := range ce.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+": "+strings.Join(ce.Fields[k], " "))
	}
	return errors.New(strings.Join(lines, "; "))
}
