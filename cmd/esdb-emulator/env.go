package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// config is the node's settings: the environment's, then the flags'.
type config struct {
	addr        string
	generateTLS bool   // TLS with a generated CA
	certFile    string // TLS with given files
	keyFile     string
	caPath      string
	users       string
	data        string
	verbose     bool
	projections esdbtest.ProjectionsMode
	cluster     int // -cluster: the number of nodes (0 or 1: a single node)
}

// tlsOn reports whether the node serves TLS.
func (c config) tlsOn() bool { return c.generateTLS || c.certFile != "" }

// ignoredVars are EventStoreDB settings that have no meaning for the
// emulator and are accepted silently.
var ignoredVars = []string{
	"EVENTSTORE_ENABLE_ATOM_PUB_OVER_HTTP",
	"EVENTSTORE_START_STANDARD_PROJECTIONS",
	"EVENTSTORE_TELEMETRY_OPTOUT",
	"EVENTSTORE_ALLOW_UNKNOWN_OPTIONS",
	"EVENTSTORE_ADVERTISE_HOST_TO_CLIENT_AS",
	"EVENTSTORE_ADVERTISE_NODE_PORT_TO_CLIENT_AS",
	"EVENTSTORE_LOG",
	"EVENTSTORE_INDEX",
	"EVENTSTORE_ENABLE_UNIX_SOCKET",
	"EVENTSTORE_DISABLE_ADMIN_UI",
	"EVENTSTORE_DISABLE_STATS_ON_HTTP",
	"EVENTSTORE_DISABLE_GOSSIP_ON_HTTP",
}

// configFromEnv reads the EventStoreDB settings of a single node from
// environ (KEY=VALUE pairs). It returns notes on what it accepted but
// does not emulate, and an error for a value EventStoreDB would refuse
// or the emulator cannot honour.
func configFromEnv(environ []string) (config, []string, error) {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "EVENTSTORE_") {
			env[k] = v
		}
	}
	get := func(keys ...string) (string, bool) {
		for _, k := range keys {
			if v, ok := env[k]; ok && v != "" {
				return v, true
			}
		}
		return "", false
	}
	boolean := func(key string) (value, set bool, err error) {
		v, ok := get(key)
		if !ok {
			return false, false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, false, fmt.Errorf("%s=%q: want true or false", key, v)
		}
		return b, true, nil
	}
	known := []string{
		"EVENTSTORE_NODE_IP", "EVENTSTORE_HTTP_IP", "EVENTSTORE_NODE_PORT", "EVENTSTORE_HTTP_PORT",
		"EVENTSTORE_INSECURE", "EVENTSTORE_CERTIFICATE_FILE", "EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE",
		"EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH", "EVENTSTORE_DB", "EVENTSTORE_MEM_DB",
		"EVENTSTORE_DEFAULT_ADMIN_PASSWORD", "EVENTSTORE_DEFAULT_OPS_PASSWORD", "EVENTSTORE_LOG_LEVEL",
		"EVENTSTORE_RUN_PROJECTIONS", "EVENTSTORE_CLUSTER_SIZE",
	}

	c := config{}
	var notes []string
	host, _ := get("EVENTSTORE_NODE_IP", "EVENTSTORE_HTTP_IP")
	if host == "" {
		host = "127.0.0.1"
	}
	port := "2113"
	if p, ok := get("EVENTSTORE_NODE_PORT", "EVENTSTORE_HTTP_PORT"); ok {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return c, nil, fmt.Errorf("EVENTSTORE_NODE_PORT=%q: want a port number", p)
		}
		port = p
	}
	c.addr = net.JoinHostPort(host, port)

	insecure, insecureSet, err := boolean("EVENTSTORE_INSECURE")
	if err != nil {
		return c, nil, err
	}
	if !insecure {
		c.certFile, _ = get("EVENTSTORE_CERTIFICATE_FILE")
		c.keyFile, _ = get("EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE")
		c.caPath, _ = get("EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH")
		if (c.certFile == "") != (c.keyFile == "") {
			return c, nil, fmt.Errorf("EVENTSTORE_CERTIFICATE_FILE and EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE go together")
		}
		// Asked for a secure node without certificates: serve TLS with a
		// generated CA rather than refuse, as the emulator is for tests.
		c.generateTLS = insecureSet && c.certFile == ""
		if c.certFile == "" {
			c.caPath = ""
		}
	}

	c.data, _ = get("EVENTSTORE_DB")
	memDB, _, err := boolean("EVENTSTORE_MEM_DB")
	if err != nil {
		return c, nil, err
	}
	if memDB {
		c.data = ""
	}

	admin, adminSet := get("EVENTSTORE_DEFAULT_ADMIN_PASSWORD")
	ops, opsSet := get("EVENTSTORE_DEFAULT_OPS_PASSWORD")
	if adminSet || opsSet {
		if !adminSet {
			admin = "changeit"
		}
		if !opsSet {
			ops = "changeit"
		}
		c.users = "admin:" + admin + ",ops:" + ops
	}

	if v, ok := get("EVENTSTORE_LOG_LEVEL"); ok {
		c.verbose = strings.EqualFold(v, "Verbose") || strings.EqualFold(v, "Debug")
	}
	if v, ok := get("EVENTSTORE_RUN_PROJECTIONS"); ok {
		if c.projections, err = esdbtest.ParseProjectionsMode(v); err != nil {
			return c, nil, fmt.Errorf("EVENTSTORE_RUN_PROJECTIONS=%q: want None, System or All", v)
		}
	}
	if v, ok := get("EVENTSTORE_CLUSTER_SIZE"); ok && v != "1" {
		return c, nil, fmt.Errorf("EVENTSTORE_CLUSTER_SIZE=%q: the emulator is a single node", v)
	}

	var unknown []string
	for k := range env {
		if !slices.Contains(known, k) && !slices.Contains(ignoredVars, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		notes = append(notes, k+" is not emulated; ignored")
	}
	return c, notes, nil
}
