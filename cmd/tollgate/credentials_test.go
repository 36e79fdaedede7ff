package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	secret := strings.Repeat("s", 40)
	if err := os.WriteFile(good, []byte("# ops\n\nTGAKAAAAAAAAAAAAAAAA "+secret+" admin deploy bot\nTGAKBBBBBBBBBBBBBBBB "+secret+" read-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, warn, err := readCredentialsFile(good)
	if err != nil || warn != "" || len(creds) != 2 || creds[0].Name != "deploy bot" || creds[1].Role != "read-only" || creds[0].Secret != secret {
		t.Fatalf("%+v %q %v", creds, warn, err)
	}
	if err := os.Chmod(good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, warn, _ := readCredentialsFile(good); !strings.Contains(warn, "make it 0600") {
		t.Fatalf("a file others can read gave no warning: %q", warn)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("TGAKAAAAAAAAAAAAAAAA\nshort "+secret+" admin\nTGAKAAAAAAAAAAAAAAAA tooshort admin\nTGAKAAAAAAAAAAAAAAAA "+secret+" root\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = readCredentialsFile(bad)
	for _, want := range []string{"bad:1:", "bad:2: Invalid access key id", "bad:3: A secret access key", "bad:4: Invalid role"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, _, err := readCredentialsFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was read")
	}
}
