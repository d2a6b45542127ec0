package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/sign"
)

var keygenCmd = &command{
	name:  "keygen",
	usage: "keygen [--out PREFIX] [--type ed25519|ecdsa] [--force]",
	short: "make a cosign key pair for repro sign and build --sign",
	long: `
Keygen writes a key pair in cosign's format: PREFIX.key, the private key
encrypted with $COSIGN_PASSWORD (an empty password when it is unset, as
cosign generate-key-pair does with an empty one), mode 0600; and
PREFIX.pub, the public key (PEM), for repro verify-signature --key and
cosign verify --key. Both repro and cosign read them.

Ed25519 (the default) signs deterministically, so that signed layouts are
reproducible; ECDSA P-256 is cosign's default and signs with random nonces.

Examples:
  COSIGN_PASSWORD=… repro keygen --out release
  repro keygen --type ecdsa`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &keygenOpts{g: g}
		fs.StringVar(&o.out, "out", "cosign", "write `PREFIX`.key and PREFIX.pub")
		fs.StringVar(&o.typ, "type", string(sign.Ed25519), "the key `TYPE`: ed25519 or ecdsa")
		fs.BoolVar(&o.force, "force", false, "replace existing files")
		return o.run
	},
}

type keygenOpts struct {
	g     *globals
	out   string
	typ   string
	force bool
}

func (o *keygenOpts) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fault.Bad(fmt.Errorf("unexpected argument %q; name the files with --out", args[0]))
	}
	t, err := sign.ParseKeyType(o.typ)
	if err != nil {
		return fault.Bad(fmt.Errorf("--type: %w", err))
	}
	privPath, pubPath := o.out+".key", o.out+".pub"
	if !o.force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return fault.Bad(fmt.Errorf("%s exists; remove it, choose another --out, or pass --force", p))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fault.Op(err)
			}
		}
	}
	priv, pub, err := sign.GenerateKeyPair(t, []byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		return fault.Op(err)
	}
	if err := atomicfs.WriteFileMode(privPath, priv, 0o600); err != nil {
		return err
	}
	if err := atomicfs.WriteFile(pubPath, pub); err != nil {
		return err
	}
	o.g.log.Info("wrote a key pair", "type", string(t), "private", privPath, "public", pubPath)
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(map[string]string{"type": string(t), "privateKey": privPath, "publicKey": pubPath})
	}
	fmt.Fprintln(o.g.stdout, pubPath)
	return nil
}
