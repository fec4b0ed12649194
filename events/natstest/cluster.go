package natstest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterReadyTimeout bounds the wait for a cluster's JetStream meta leader
// and for every node to be current.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a JetStream cluster of embedded servers on loopback, owned by
// one test: every node has its own client port, cluster port, server name
// and store directory, and routes to every other node.
type Cluster struct {
	name  string
	names []string // node names, "n1", "n2", ...
	urls  []string // client URLs, in node order

	mu    sync.Mutex
	nodes map[string]*server.Server // running nodes by name
}

// StartCluster starts a JetStream cluster of n nodes on 127.0.0.1, waits
// until it has a meta leader and every node is current, and shuts every node
// down when tb ends. The servers log nothing.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: a cluster needs at least one node, not %d", n)
	}
	// The cluster ports are reserved by binding port 0 and closing it, so a
	// port can be taken by someone else before the node binds it; retry the
	// whole cluster then.
	var err error
	for range 3 {
		var c *Cluster
		if c, err = startCluster(tb, n); err == nil {
			tb.Cleanup(c.shutdownAll)
			if err = c.waitReady(n); err != nil {
				tb.Fatalf("natstest: %v", err)
			}
			return c
		}
	}
	tb.Fatalf("natstest: start cluster: %v", err)
	return nil
}

func startCluster(tb testing.TB, n int) (*Cluster, error) {
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	c := &Cluster{name: "authms-test", nodes: make(map[string]*server.Server, n)}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		ns, err := server.NewServer(&server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			Cluster: server.ClusterOpts{
				Name: c.name,
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes:                 server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:                  true,
			NoSigs:                 true,
			DisableJetStreamBanner: true,
		})
		if err != nil {
			c.shutdownAll()
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			c.shutdownAll()
			return nil, fmt.Errorf("node %s: not ready for connections (cluster port %d taken?)", name, ports[i])
		}
		c.names = append(c.names, name)
		c.urls = append(c.urls, ns.ClientURL())
		c.nodes[name] = ns
	}
	return c, nil
}

// freePorts returns n ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a cluster port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady waits for a meta leader that sees peers nodes, all of them
// current.
func (c *Cluster) waitReady(peers int) error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for time.Now().Before(deadline) {
		if c.ready(peers) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster %s has no JetStream meta leader with %d current peers after %s", c.name, peers, clusterReadyTimeout)
}

func (c *Cluster) ready(peers int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var leader *server.Server
	for _, ns := range c.nodes {
		if ns.JetStreamIsLeader() {
			leader = ns
		}
	}
	if leader == nil || len(leader.JetStreamClusterPeers()) != peers {
		return false
	}
	for _, ns := range c.nodes {
		if !ns.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

// Names returns the node names ("n1", "n2", ...), which JetStream reports
// as stream and consumer leaders.
func (c *Cluster) Names() []string { return append([]string(nil), c.names...) }

// URLs returns every node's client URL, comma-separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string { return strings.Join(c.urls, ",") }

// Connect connects to the cluster (any node) and closes the connection when
// tb ends. Like [Server.Connect] it reconnects forever, every 50ms, to
// whichever node is up; opts are applied after these defaults.
func (c *Cluster) Connect(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	defaults := []nats.Option{
		nats.Name(tb.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}
	nc, err := nats.Connect(c.URLs(), append(defaults, opts...)...)
	if err != nil {
		tb.Fatalf("natstest: connect %s: %v", c.URLs(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection (see Connect).
func (c *Cluster) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(c.Connect(tb))
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// Shutdown stops the named node and waits until it has stopped; the other
// nodes carry on (a majority keeps the cluster writable). Stopping a stopped
// or unknown node does nothing.
func (c *Cluster) Shutdown(name string) {
	c.mu.Lock()
	ns := c.nodes[name]
	delete(c.nodes, name)
	c.mu.Unlock()
	if ns == nil {
		return
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}

func (c *Cluster) shutdownAll() {
	c.mu.Lock()
	names := make([]string, 0, len(c.nodes))
	for name := range c.nodes {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		c.Shutdown(name)
	}
}
