package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"boxoffice/httpapi"
)

func tokenCmd() *cobra.Command {
	var subject, role, secret string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint a bearer token (HS256 JWT) for a subject and role",
		Example: `  boxoffice token --subject u1 --role buyer
  BOXOFFICE_AUTH_SECRET=... boxoffice token --subject admin --role admin --ttl 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secret == "" {
				return fmt.Errorf("--auth-secret or BOXOFFICE_AUTH_SECRET is required")
			}
			tok, err := httpapi.MintToken([]byte(secret), subject, httpapi.Role(role), ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	c.Flags().StringVar(&subject, "subject", "", "the token's subject (user id)")
	c.Flags().StringVar(&role, "role", "buyer", "buyer, organiser or admin")
	c.Flags().StringVar(&secret, "auth-secret", env("BOXOFFICE_AUTH_SECRET", ""), "HS256 secret shared by the cluster")
	c.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	c.MarkFlagRequired("subject")
	return c
}
