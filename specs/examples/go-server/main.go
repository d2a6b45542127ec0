// Command server is repro's example Go server: it serves the files under
// -root over HTTP. With -check it lists what it would serve and exits,
// which is how the end-to-end tests run it. It is a Go module of its own
// (example.com/go-server), which the go: entries of the specs beside it
// compile; -X main.version sets the version it reports.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path/filepath"
)

// version is set at link time: -X main.version={{.Version}} in repro.yaml.
var version = "dev"

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	root := flag.String("root", "/srv/static", "directory to serve")
	check := flag.Bool("check", false, "print the files that would be served and exit")
	flag.Parse()
	if *check {
		n := 0
		err := filepath.WalkDir(*root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "check:", err)
			os.Exit(1)
		}
		motd, _ := os.ReadFile("/etc/motd")
		fmt.Printf("repro example server %s: %d files under %s; motd: %s", version, n, *root, motd)
		return
	}
	log.Printf("serving %s on %s", *root, *addr)
	log.Fatal(http.ListenAndServe(*addr, http.FileServer(http.Dir(*root))))
}
