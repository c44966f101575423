// containerd's own snapshotter conformance suite (snapshots/testsuite, the
// one containerd runs against overlayfs, btrfs and devmapper) driven through
// containerd's proxy client against `tessera serve`.
//
// Built offline from Debian's packaged sources (GOPATH mode) by
// tests/snapshotter/suite.sh, which passes the tessera binary in
// $TESSERA_BIN.  Each case gets a `tessera serve` of its own on a fresh
// store.  The store, the FUSE mount and the socket live in a directory of
// their own, outside the root the suite hands the case: on a failure the
// suite dumps that root with file contents, and the 8 GiB sparse volume
// files of a FUSE mount there would exhaust memory.
package suite

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

const serveTimeout = 20 * time.Second

// serve is one `tessera serve` and the client connection to it.
type serve struct {
	dir  string
	cmd  *exec.Cmd
	conn *grpc.ClientConn
	done chan error
}

func (s *serve) stop() error {
	var err error
	if s.conn != nil {
		s.conn.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-s.done:
		case <-time.After(60 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
			err = fmt.Errorf("tessera serve did not stop on SIGTERM within 60 s")
		}
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 0 {
				err = nil
			} else {
				err = fmt.Errorf("tessera serve: %v; log:\n%s", err, tail(filepath.Join(s.dir, "serve.log")))
			}
		}
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func start(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
	bin := os.Getenv("TESSERA_BIN")
	if bin == "" {
		return nil, nil, fmt.Errorf("TESSERA_BIN is not set")
	}
	base := os.Getenv("TESSERA_SUITE_DIR") // outside the suite's root
	dir, err := os.MkdirTemp(base, "case-")
	if err != nil {
		return nil, nil, err
	}
	s := &serve{dir: dir, done: make(chan error, 1)}
	store := filepath.Join(dir, "store")
	mnt := filepath.Join(dir, "mnt")
	sock := filepath.Join(dir, "snapshotter.sock")
	if err := os.Mkdir(mnt, 0700); err != nil {
		s.stop()
		return nil, nil, err
	}
	if out, err := exec.Command(bin, "--store", store, "init").CombinedOutput(); err != nil {
		s.stop()
		return nil, nil, fmt.Errorf("tessera init: %v: %s", err, out)
	}
	log, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		s.stop()
		return nil, nil, err
	}
	s.cmd = exec.Command(bin, "--store", store, "serve", "--socket", sock, "--mount", mnt,
		"--size", "1G")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		s.stop()
		return nil, nil, err
	}
	go func() { s.done <- s.cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(serveTimeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("tessera serve not up after %v: %s", serveTimeout, tail(filepath.Join(dir, "serve.log")))
			s.stop()
			return nil, nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.conn, err = grpc.DialContext(ctx, "unix://"+sock,
		grpc.WithInsecure())
	if err != nil {
		s.stop()
		return nil, nil, err
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(s.conn), "tessera")
	return sn, s.stop, nil
}

func TestTesseraSnapshotter(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (FUSE, loop devices, mounts)")
	}
	testsuite.SnapshotterSuite(t, "tessera", start)
}
