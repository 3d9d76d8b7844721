package mailtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// listenRestartable listens on a loopback port that a server can give up
// (the sink's or Dovecot's Stop) and take back (Start). The kernel hands out ports for
// Listen("…:0") and for the local end of every client connection from its
// ephemeral range; a port from that range given up by Stop was, with tests
// running in parallel, soon someone else's, so that Start failed with
// "address already in use", or a connection to the stopped sink reached
// another listener or connected to itself. A port below the range is taken
// only by an explicit bind, as here, at random: it stays free while the
// sink is stopped. Where the range starts too low to leave room below, it
// falls back to an ephemeral port.
func listenRestartable() (net.Listener, error) {
	low := ephemeralLow()
	if low < 12000 {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	var err error
	for range 64 {
		port := 10000 + rand.IntN(low-10000)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no free port below %d: %w", low, err)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default where it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return n
}
