package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Runner runs one command and returns its combined output. The suite drives
// Docker only through it, so tests can record the commands instead.
type Runner interface {
	Run(ctx context.Context, env []string, name string, args ...string) (string, error)
}

// ExecRunner runs commands as processes, each bounded by Timeout.
type ExecRunner struct {
	Timeout time.Duration
}

var _ Runner = ExecRunner{}

// outputMax bounds the output kept in an error.
const outputMax = 2048

// Run runs name with args and env added to this process's environment.
func (r ExecRunner) Run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A command that ignores its kill must not hold the suite past the
	// deadline with pipes still open.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	s := out.String()
	if err != nil {
		tail := s
		if len(tail) > outputMax {
			tail = "…" + tail[len(tail)-outputMax:]
		}
		return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(tail))
	}
	return s, nil
}

// Docker drives one compose project through the docker and docker-compose
// CLIs (docker-compose 1.29: file format 2.4, profiles, no `docker compose`).
type Docker struct {
	run Runner
	// project is the compose project name; networks and volumes are named
	// <project>_<name>.
	project string
	files   []string
	env     []string
}

// NewDocker describes the compose project project made of files, with env
// (KEY=VALUE) given to every docker-compose call.
func NewDocker(run Runner, project string, files []string, env []string) *Docker {
	return &Docker{run: run, project: project, files: files, env: env}
}

// Network is the full name of a network of the compose file.
func (d *Docker) Network(name string) string { return d.project + "_" + name }

func (d *Docker) compose(ctx context.Context, args ...string) (string, error) {
	a := []string{"-p", d.project}
	for _, f := range d.files {
		a = append(a, "-f", f)
	}
	return d.run.Run(ctx, d.env, "docker-compose", append(a, args...)...)
}

func (d *Docker) docker(ctx context.Context, args ...string) (string, error) {
	return d.run.Run(ctx, nil, "docker", args...)
}

// Up creates and starts services (a service of a profile starts when named).
func (d *Docker) Up(ctx context.Context, services ...string) error {
	_, err := d.compose(ctx, append([]string{"up", "-d", "--no-deps"}, services...)...)
	return err
}

// Down stops and removes every container, network and volume of the
// project, those of the spare profile too.
func (d *Docker) Down(ctx context.Context) error {
	_, err := d.compose(ctx, "--profile", spareProfile, "down", "-v", "-t", "10", "--remove-orphans")
	return err
}

// Create creates a service's container (and its volume) without starting
// it, so that adding the node later is a fast `docker start`. It returns
// the container's id.
func (d *Docker) Create(ctx context.Context, service string) (string, error) {
	if _, err := d.compose(ctx, "up", "--no-start", "--no-deps", service); err != nil {
		return "", err
	}
	return d.Container(ctx, service)
}

// Networks returns the project's networks (short names) a container is on.
func (d *Docker) Networks(ctx context.Context, container string) ([]string, error) {
	out, err := d.docker(ctx, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, container)
	if err != nil {
		return nil, err
	}
	var nets []string
	for _, n := range strings.Fields(out) {
		if short, ok := strings.CutPrefix(n, d.project+"_"); ok {
			nets = append(nets, short)
		}
	}
	return nets, nil
}

// Remove deletes a service's container (killing it if it runs) and its
// volume (named as the service), so that it starts empty next time. It uses
// the docker CLI: docker-compose takes seconds per call on a busy machine.
func (d *Docker) Remove(ctx context.Context, service string) error {
	ctr, err := d.Container(ctx, service)
	if err != nil {
		return err
	}
	if ctr != "" {
		if _, err := d.docker(ctx, "rm", "-f", "-v", ctr); err != nil {
			return err
		}
	}
	_, err = d.docker(ctx, "volume", "rm", "-f", d.project+"_"+service)
	return err
}

// Logs returns the last lines of a service's log (lines < 0: all of it).
func (d *Docker) Logs(ctx context.Context, service string, lines int) (string, error) {
	ctr, err := d.Container(ctx, service)
	if err != nil || ctr == "" {
		return "", fmt.Errorf("no container of %s: %v", service, err)
	}
	tail := "all"
	if lines >= 0 {
		tail = strconv.Itoa(lines)
	}
	return d.docker(ctx, "logs", "--timestamps", "--tail", tail, ctr)
}

// Container returns the id of a service's container ("" if it has none),
// by the labels docker-compose puts on it.
func (d *Docker) Container(ctx context.Context, service string) (string, error) {
	out, err := d.docker(ctx, "ps", "-aq", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+d.project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return "", err
	}
	ids := strings.Fields(out)
	switch len(ids) {
	case 0:
		return "", nil
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("service %s has %d containers", service, len(ids))
}

// IP returns a container's address on one of the project's networks.
func (d *Docker) IP(ctx context.Context, container, network string) (string, error) {
	out, err := d.docker(ctx, "inspect", "-f", `{{with index .NetworkSettings.Networks "`+d.Network(network)+`"}}{{.IPAddress}}{{end}}`, container)
	if err != nil {
		return "", err
	}
	ip := strings.TrimSpace(out)
	if ip == "" {
		return "", fmt.Errorf("container %s has no address on %s", container, d.Network(network))
	}
	return ip, nil
}

// Kill sends SIGKILL to a container's process: a crash, no shutdown.
func (d *Docker) Kill(ctx context.Context, container string) error {
	_, err := d.docker(ctx, "kill", "-s", "KILL", container)
	return err
}

// Start starts a stopped container.
func (d *Docker) Start(ctx context.Context, container string) error {
	_, err := d.docker(ctx, "start", container)
	return err
}

// Stop sends SIGTERM and waits up to grace for a clean exit before SIGKILL.
func (d *Docker) Stop(ctx context.Context, container string, grace time.Duration) error {
	_, err := d.docker(ctx, "stop", "-t", strconv.Itoa(int(grace/time.Second)), container)
	return err
}

// Pause freezes every process of a container (cgroup freezer): its sockets
// stay open, nothing answers.
func (d *Docker) Pause(ctx context.Context, container string) error {
	_, err := d.docker(ctx, "pause", container)
	return err
}

// Unpause thaws a paused container.
func (d *Docker) Unpause(ctx context.Context, container string) error {
	_, err := d.docker(ctx, "unpause", container)
	return err
}

// Disconnect takes a container off one of the project's networks.
func (d *Docker) Disconnect(ctx context.Context, network, container string) error {
	_, err := d.docker(ctx, "network", "disconnect", "-f", d.Network(network), container)
	return err
}

// Connect puts a container on one of the project's networks under alias
// (a disconnect forgets the aliases the compose file gave).
func (d *Docker) Connect(ctx context.Context, network, container, alias string) error {
	_, err := d.docker(ctx, "network", "connect", "--alias", alias, d.Network(network), container)
	return err
}

// CreateNetwork creates an internal network of the project that the
// compose file does not declare (the minority side of a split).
func (d *Docker) CreateNetwork(ctx context.Context, name string) error {
	_, err := d.docker(ctx, "network", "create", "--internal",
		"--label", "com.docker.compose.project="+d.project, d.Network(name))
	return err
}

// RemoveNetwork removes a network CreateNetwork made; a missing one is fine.
func (d *Docker) RemoveNetwork(ctx context.Context, name string) error {
	out, err := d.docker(ctx, "network", "ls", "-q", "-f", "name=^"+d.Network(name)+"$")
	if err != nil || strings.TrimSpace(out) == "" {
		return err
	}
	_, err = d.docker(ctx, "network", "rm", d.Network(name))
	return err
}
