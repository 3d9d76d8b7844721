// Command helpdesk is the shared-inbox email ticketing daemon and its
// command-line tools. All logic lives in package cli.
package main

import (
	"os"

	"github.com/helpdesk/helpdesk/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
