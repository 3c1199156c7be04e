package devstack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is the path of Mailroom's Go module, whose go.mod marks the repository root.
const Module = "github.com/mailroom/mailroom"

// FindRepoRoot walks up from the working directory to the directory whose go.mod declares
// Mailroom's module. Tests run in their package's directory and the CLI in the checkout, so both
// find template.yaml and the tools that `make tools` builds.
func FindRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if mod, err := modulePath(filepath.Join(dir, "go.mod")); err == nil && mod == Module {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repository root: no go.mod of module %s in %s or above", Module, wd)
		}
	}
}

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			mod, _, _ := strings.Cut(strings.TrimSpace(rest), "//")
			return strings.Trim(strings.TrimSpace(mod), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no module line")
}
