// Command release writes sonde's release files into a directory (dist/):
//
//	release archives [flags] [os/arch ...]   the archives, all platforms by default
//	release packages [flags] [arch ...]      the deb and rpm packages, amd64 and arm64 by default
//
// and then dist/sha256sums.txt over every release file of the version
// there. `make release` and `make packages` run it with the stamps the
// Makefile takes from git; packaging/README.md says what the packages hold.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/sonde-exporter/sonde/internal/release"
)

type options struct {
	root, dist, goCmd, nfpm, epoch string
	stamp                          release.Stamp
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || (args[0] != "archives" && args[0] != "packages") {
		return fmt.Errorf("usage: release archives|packages [flags] [targets]; release archives -h lists the flags")
	}
	what := args[0]
	fs := flag.NewFlagSet("release "+what, flag.ContinueOnError)
	var o options
	fs.StringVar(&o.root, "root", ".", "The sonde source tree.")
	fs.StringVar(&o.dist, "dist", "dist", "Where release files are written.")
	fs.StringVar(&o.goCmd, "go", "go", "The go command.")
	fs.StringVar(&o.nfpm, "nfpm", "", "The command that runs nfpm, split at spaces (packages only; the Makefile's NFPM names the version).")
	fs.StringVar(&o.stamp.Version, "version", "", "The version, as the VERSION file says.")
	fs.StringVar(&o.stamp.Revision, "revision", "", "The commit, as --version shows it.")
	fs.StringVar(&o.stamp.Branch, "branch", "", "The branch, as --version shows it.")
	fs.StringVar(&o.stamp.BuildUser, "build-user", "release@sonde", "The build user --version shows: fixed, not the builder's, for reproducibility.")
	fs.StringVar(&o.epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Seconds since 1970: the build date, and every file's time (default: $SOURCE_DATE_EPOCH).")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	date, err := release.ParseEpoch(o.epoch)
	if err != nil {
		return err
	}
	o.stamp.Date = date
	if err := o.stamp.Check(); err != nil {
		return err
	}
	r := release.Release{Builder: release.Builder{Go: o.goCmd, Root: o.root, Stamp: o.stamp}, Dist: o.dist}
	if err := r.CheckSources(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if what == "archives" {
		err = archives(ctx, r, fs.Args())
	} else {
		err = packages(ctx, r, strings.Fields(o.nfpm), fs.Args())
	}
	if err != nil {
		return err
	}
	return release.WriteSums(o.dist, o.stamp.Version)
}

func archives(ctx context.Context, r release.Release, names []string) error {
	targets := release.DefaultTargets
	if len(names) > 0 {
		targets = nil
		for _, n := range names {
			t, err := release.ParseTarget(n)
			if err != nil {
				return err
			}
			targets = append(targets, t)
		}
	}
	for _, t := range targets {
		path, err := r.Archive(ctx, t)
		if err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}

func packages(ctx context.Context, r release.Release, nfpm, arches []string) error {
	if len(arches) == 0 {
		arches = release.PackageArches()
	}
	for _, arch := range arches {
		paths, err := r.Packages(ctx, nfpm, arch)
		if err != nil {
			return err
		}
		for _, p := range paths {
			fmt.Println(p)
		}
	}
	return nil
}
