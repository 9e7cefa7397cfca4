package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newStatusCmd, func() *cobra.Command { return newListCmd("block") },
		func() *cobra.Command { return newListCmd("allow") }, newUnderAttackCmd, newExplainCmd)
}

// adminClient talks to a running shield's admin API.
type adminClient struct {
	addr, tokenFile string
}

func (c *adminClient) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.addr, "admin", "127.0.0.1:9090", "admin listener of the running shield")
	cmd.PersistentFlags().StringVar(&c.tokenFile, "admin-token-file", "", "file holding the admin token (default $PORTCULLIS_ADMIN_TOKEN)")
}

func (c *adminClient) do(method, path string, body any, out io.Writer) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	base := c.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	token := os.Getenv("PORTCULLIS_ADMIN_TOKEN")
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if u, err := user.Current(); err == nil {
		req.Header.Set("X-Portcullis-Operator", u.Username)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin API at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = out.Write(b)
	return err
}

func newStatusCmd() *cobra.Command {
	var c adminClient
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running shield's sites, states, open incidents and decisions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return c.do("GET", "/api/v1/status", nil, cmd.OutOrStdout())
			}
			var buf bytes.Buffer
			if err := c.do("GET", "/api/v1/status", nil, &buf); err != nil {
				return err
			}
			return writeStatus(cmd.OutOrStdout(), buf.Bytes())
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON document as is")
	return cmd
}

// newListCmd builds `block` and `allow`: add|rm entries with a TTL.
func newListCmd(action string) *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{Use: action, Short: strings.ToUpper(action[:1]) + action[1:] + " an address, prefix, ASN or country (add|rm|list)"}
	var ttl, site, reason string
	add := &cobra.Command{
		Use:     "add ADDRESS|PREFIX|ASn|CC",
		Short:   action + " a scope for --ttl",
		Example: fmt.Sprintf("  portcullis %s add 203.0.113.0/24 --ttl 1h --reason 'scanner'\n  portcullis %s add AS64496 --ttl 30m", action, action),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, value := scopeOf(args[0])
			return c.do("POST", "/api/v1/decisions", map[string]string{"action": action, "scope": scope, "value": value, "site": site, "ttl": ttl, "reason": reason}, cmd.OutOrStdout())
		},
	}
	add.Flags().StringVar(&ttl, "ttl", "1h", "how long the decision lasts (\"\" = until removed)")
	add.Flags().StringVar(&site, "site", "", "site name (default: all sites)")
	add.Flags().StringVar(&reason, "reason", "operator", "reason recorded in the incident timeline")
	rm := &cobra.Command{
		Use:   "rm DECISION-ID",
		Short: "remove a decision (ids are listed by `" + action + " list`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do("DELETE", "/api/v1/decisions/"+url.PathEscape(args[0]), nil, cmd.OutOrStdout())
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "list active decisions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.do("GET", "/api/v1/decisions", nil, cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(add, rm, list)
	c.register(cmd)
	return cmd
}

// scopeOf classifies an operator's argument.
func scopeOf(v string) (scope, value string) {
	switch {
	case strings.Contains(v, "/"):
		return "prefix", v
	case strings.HasPrefix(strings.ToUpper(v), "AS") && len(v) > 2 && strings.Trim(v[2:], "0123456789") == "":
		return "asn", v
	case len(v) == 2 && strings.Trim(strings.ToUpper(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "":
		return "country", v
	}
	return "address", v
}

func newUnderAttackCmd() *cobra.Command {
	var c adminClient
	var ttl string
	cmd := &cobra.Command{
		Use:     "under-attack on|off SITE",
		Short:   "Switch a site's under-attack mode (challenge everyone without clearance or standing)",
		Example: "  portcullis under-attack on campaign --ttl 2h\n  portcullis under-attack off campaign",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			on := args[0] == "on"
			if !on && args[0] != "off" {
				return fmt.Errorf("under-attack: first argument must be on or off, got %q", args[0])
			}
			return c.do("POST", "/api/v1/sites/"+url.PathEscape(args[1])+"/under-attack", map[string]any{"on": on, "ttl": ttl}, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "switch off automatically after this long (default: until switched off)")
	c.register(cmd)
	return cmd
}

func newExplainCmd() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "explain REQUEST-ID",
		Short: "Explain why the shield answered a request (the id is in every response's X-Request-Id and refusal page)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do("GET", "/api/v1/explain/"+url.PathEscape(args[0]), nil, cmd.OutOrStdout())
		},
	}
	c.register(cmd)
	return cmd
}
