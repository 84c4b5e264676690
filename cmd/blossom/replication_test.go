package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestReplicationFlagsValidate: the defaults pass, and a write-ahead-log
// segment size below 1 and --rf without --data-dir are refused, naming
// the flag.
func TestReplicationFlagsValidate(t *testing.T) {
	parse := func(args ...string) error {
		var f replicationFlags
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.add(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		return f.validate()
	}
	if err := parse(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := parse("--rf", "3", "--data-dir", t.TempDir(), "--wal-segment-bytes", "4096"); err != nil {
		t.Fatalf("--wal-segment-bytes 4096: %v", err)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--wal-segment-bytes", "0"}, "--wal-segment-bytes"},
		{[]string{"--rf", "3"}, "--data-dir"},
	} {
		err := parse(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%v: got %v, want an error naming %s", c.args, err, c.flag)
		}
	}
}
