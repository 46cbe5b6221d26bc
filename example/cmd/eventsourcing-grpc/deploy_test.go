package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// The orders system's services and the ports they serve on.
var deployed = map[string]string{
	"orders":        "50051",
	"reservations":  "50052",
	"payments":      "50053",
	"orderssummary": "50054",
	"eventstoredb":  "2113",
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// k8sContainer is what the test reads of a Deployment's only container.
type k8sContainer struct {
	Image   string
	Args    []string
	Env     map[string]string // values; variables from Secrets are in Secrets
	Secrets map[string]string // variable: Secret
	Mounts  map[string]string // mount path: volume
	Probe   []string          // the readiness probe's command
	Ports   []int             // the container's ports
	Volumes map[string]map[string]any
}

// TestDeploymentFiles reads docker-compose.yml and deploy/k8s/ and checks
// that they run the same system with the same settings: every service's
// environment is the same in both (compose's ${VAR:-default} counts as its
// default, or, for a variable Kubernetes takes from a Secret, as $(VAR)),
// certificates are where `eventsourcing-grpc ssl` writes them, the health
// checks are the binaries' health subcommands, and data is on named volumes.
func TestDeploymentFiles(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	var compose composeFile
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &compose))
	k8s := readK8s(t, filepath.Join(root, "deploy", "k8s"))

	hosts := slices.Sorted(maps.Keys(deployed))
	ssl := t.TempDir()
	require.NoError(t, grpcapp.GenerateCertificates(ssl, hosts, grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}))
	secrets, err := os.ReadFile(filepath.Join(root, "deploy", "k8s", "secrets.sh"))
	require.NoError(t, err)

	fromSecret := map[string]bool{}
	for _, c := range k8s.deployments {
		for v := range c.Secrets {
			fromSecret[v] = true
		}
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(deployed)), slices.Collect(maps.Keys(compose.Services)), "compose services")
	assert.ElementsMatch(t, slices.Collect(maps.Keys(deployed)), slices.Collect(maps.Keys(k8s.deployments)), "Deployments")

	for name, port := range deployed {
		svc := compose.Services[name]
		c, ok := k8s.deployments[name]
		require.True(t, ok, "deploy/k8s has no Deployment %s", name)

		// The same environment.
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = composeDefault(v, fromSecret)
		}
		assert.Equal(t, env, c.Env, "%s: the environment of docker-compose.yml and deploy/k8s differ", name)
		for v, secret := range c.Secrets {
			assert.Contains(t, string(secrets), secret, "%s: secrets.sh does not create the Secret %s of %s", name, secret, v)
		}
		assert.Equal(t, composeDefault(svc.Image, nil), c.Image, "%s: image", name)
		assert.Contains(t, k8s.services[name], port, "%s: the Service's port", name)

		// The data on named volumes, mounted at the same paths.
		for _, v := range svc.Volumes {
			src, dst := composeVolume(v)
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue // certificates: below
			}
			assert.Contains(t, compose.Volumes, src, "%s: %s is not a named volume", name, src)
			assert.Equal(t, src, c.Mounts[dst], "%s: the volume at %s", name, dst)
			assert.Contains(t, k8s.claims, src, "%s: no PersistentVolumeClaim %s", name, src)
		}

		if name == "eventstoredb" {
			// Each image has its own healthcheck (the emulator's, or the
			// real node's), so that ESDB_IMAGE swaps the node.
			assert.Empty(t, svc.Healthcheck.Test, "eventstoredb: the image's own healthcheck")
			df, err := os.ReadFile(filepath.Join(root, "docker", "esdb-emulator.Dockerfile"))
			require.NoError(t, err)
			assert.Contains(t, string(df), `CMD ["`+strings.Join(c.Probe, `", "`)+`"]`, "the emulator image's HEALTHCHECK is the Kubernetes probe")
			assert.Equal(t, "${ESDB_IMAGE:-esdb-emulator:latest}", svc.Image)
			for _, key := range []string{"EVENTSTORE_CERTIFICATE_FILE", "EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE", "EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH"} {
				assertCertificate(t, name, key, c.Env[key], svc.Volumes, c, ssl)
			}
			assert.Equal(t, "false", c.Env["EVENTSTORE_INSECURE"])
			continue
		}

		// A member of the system: it serves its own address on every
		// interface and reaches the others by service name.
		assert.Equal(t, []string{"server"}, svc.Command, name)
		assert.Equal(t, svc.Command, c.Args, name)
		topic := env["APPLICATION_TOPIC"]
		assert.Equal(t, name, strings.ToLower(orders.Registry().LookupMember(topic)), "%s serves APPLICATION_TOPIC=%s", name, topic)
		_, _, err := orders.Registry().LookupSystem(env["SYSTEM_TOPIC"])
		assert.NoError(t, err)
		for peer, peerPort := range deployed {
			if peer == "eventstoredb" {
				continue
			}
			want := peer + ":" + peerPort
			if peer == name {
				want = "0.0.0.0:" + port
			}
			assert.Equal(t, want, env[strings.ToUpper(peer)+"_GRPC_SERVER_ADDRESS"], "%s: the address of %s", name, peer)
		}
		assert.Contains(t, svc.Ports, "${"+strings.ToUpper(name)+"_PORT:-"+port+"}:"+port, "%s publishes its port", name)
		assert.Equal(t, "service_healthy", svc.DependsOn["eventstoredb"].Condition, "%s waits for a healthy node", name)
		require.NotEmpty(t, svc.Healthcheck.Test, "%s: no healthcheck", name)
		assert.Equal(t, "CMD", svc.Healthcheck.Test[0], "%s: a healthcheck without a shell", name)
		assert.Equal(t, svc.Healthcheck.Test[1:], c.Probe, "%s: the compose healthcheck is the Kubernetes probe", name)
		assert.Equal(t, "/usr/local/bin/eventsourcing-grpc", c.Probe[0])
		assert.Equal(t, "health", c.Probe[1])

		// The operations endpoints (docs/operating.md) on 9464 in every
		// container, published on the host from 9464 on.
		assert.Equal(t, "0.0.0.0:9464", env["METRICS_ADDRESS"], name)
		assert.Contains(t, c.Ports, 9464, "%s: the container's metrics port", name)
		p, _ := strconv.Atoi(port)
		assert.Contains(t, svc.Ports, fmt.Sprintf("${%s_METRICS_PORT:-%d}:9464", strings.ToUpper(name), 9464+p-50051), "%s publishes its metrics port", name)

		assert.Equal(t, "eventstoredb", env["PERSISTENCE_MODULE"], name)
		u, err := url.Parse(env["EVENTSTOREDB_URI"])
		require.NoError(t, err, name)
		assert.Equal(t, "eventstoredb:2113", u.Host, name)
		assert.Equal(t, "true", u.Query().Get("tls"), "%s: TLS to the node", name)
		assert.Equal(t, env["GRPC_SSL_ROOT_CERTIFICATE_PATH"], u.Query().Get("tlsCAFile"), "%s: the node's certificate is of the same CA", name)
		// The node's admin password, the same variable on both sides.
		pass, _ := u.User.Password()
		assert.Equal(t, "$(ESDB_ADMIN_PASSWORD)", pass, name)
		assert.Equal(t, pass, k8s.deployments["eventstoredb"].Env["EVENTSTORE_DEFAULT_ADMIN_PASSWORD"], name)
		for _, key := range []string{"GRPC_SSL_PRIVATE_KEY_PATH", "GRPC_SSL_CERTIFICATE_PATH", "GRPC_SSL_ROOT_CERTIFICATE_PATH"} {
			assertCertificate(t, name, key, env[key], svc.Volumes, c, ssl)
		}
	}
	assert.Contains(t, string(secrets), "orders reservations payments orderssummary eventstoredb")
}

// assertCertificate checks that a certificate path of a service's
// environment is, in docker-compose.yml, a file `eventsourcing-grpc ssl`
// writes into the directory mounted there, and in deploy/k8s, a Secret's
// item that secrets.sh fills from the same file.
func assertCertificate(t *testing.T, name, key, p string, volumes []string, c k8sContainer, ssl string) {
	t.Helper()
	found := false
	for _, v := range volumes {
		src, dst := composeVolume(v)
		host, isSSL := strings.CutPrefix(src, "./ssl/")
		if p == dst && isSSL {
			found = true
			assert.DirExists(t, filepath.Join(ssl, host), "%s: %s=%s", name, key, p)
		} else if rel, ok := strings.CutPrefix(p, dst+"/"); ok && isSSL {
			found = true
			assert.FileExists(t, filepath.Join(ssl, host, rel), "%s: %s=%s", name, key, p)
		}
	}
	assert.True(t, found, "%s: %s=%s is in no directory of ./ssl mounted in docker-compose.yml", name, key, p)

	if vol, ok := c.Mounts[p]; ok {
		// A directory of CA certificates: the root's Secret.
		var got []string
		for _, src := range secretSources(c.Volumes[vol]) {
			got = append(got, src["secretName"].(string))
		}
		assert.Equal(t, []string{"root-ssl-secret"}, got, "%s: %s=%s in deploy/k8s", name, key, p)
		return
	}
	dir, file := path.Split(p)
	vol, ok := c.Mounts[strings.TrimSuffix(dir, "/")]
	require.True(t, ok, "%s: %s=%s is in no volume in deploy/k8s", name, key, p)
	// Each Secret's items: tls.key and tls.crt of <service>-ssl-secret
	// (kubectl create secret tls from ssl/<service>/<service>.key and .crt),
	// root.crt of root-ssl-secret.
	want := map[string]string{name + ".key": name + "-ssl-secret/tls.key", name + ".crt": name + "-ssl-secret/tls.crt", "root.crt": "root-ssl-secret/root.crt"}[file]
	var got []string
	for _, src := range secretSources(c.Volumes[vol]) {
		secret, _ := src["secretName"].(string)
		if secret == "" {
			secret, _ = src["name"].(string)
		}
		items, _ := src["items"].([]any)
		if len(items) == 0 && secret == "root-ssl-secret" {
			got = append(got, secret+"/"+file) // every key, under its own name
		}
		for _, it := range items {
			m := it.(map[string]any)
			if m["path"] == file {
				got = append(got, secret+"/"+m["key"].(string))
			}
		}
	}
	assert.Equal(t, []string{want}, got, "%s: %s=%s in deploy/k8s", name, key, p)
}

// secretSources returns the Secrets a volume is made of: a secret volume,
// or the secrets of a projected one.
func secretSources(vol map[string]any) []map[string]any {
	if s, ok := vol["secret"].(map[string]any); ok {
		return []map[string]any{s}
	}
	var out []map[string]any
	if p, ok := vol["projected"].(map[string]any); ok {
		for _, src := range p["sources"].([]any) {
			if s, ok := src.(map[string]any)["secret"].(map[string]any); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// composeVolume is a compose volume's source and target, with no variable set.
func composeVolume(v string) (src, dst string) {
	src, dst, _ = strings.Cut(strings.TrimSuffix(composeDefault(v, nil), ":ro"), ":")
	return src, dst
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::?-([^}]*))?\}`)

// composeDefault is a compose value as it is with no variable set; a
// variable Kubernetes takes from a Secret stays a reference, $(VAR).
func composeDefault(v string, fromSecret map[string]bool) string {
	return interpolation.ReplaceAllStringFunc(v, func(m string) string {
		sm := interpolation.FindStringSubmatch(m)
		if fromSecret[sm[1]] {
			return "$(" + sm[1] + ")"
		}
		return sm[2]
	})
}

type k8sFiles struct {
	deployments map[string]k8sContainer
	services    map[string][]string // name: ports
	claims      map[string]bool
}

func readK8s(t *testing.T, dir string) k8sFiles {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	out := k8sFiles{deployments: map[string]k8sContainer{}, services: map[string][]string{}, claims: map[string]bool{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
				Spec struct {
					Ports []struct {
						Port int `yaml:"port"`
					} `yaml:"ports"`
					Template struct {
						Spec struct {
							Volumes []map[string]any `yaml:"volumes"`
							// One container per Deployment.
							Containers []struct {
								Image string   `yaml:"image"`
								Args  []string `yaml:"args"`
								Ports []struct {
									ContainerPort int `yaml:"containerPort"`
								} `yaml:"ports"`
								Env []struct {
									Name      string `yaml:"name"`
									Value     string `yaml:"value"`
									ValueFrom struct {
										SecretKeyRef struct {
											Name string `yaml:"name"`
										} `yaml:"secretKeyRef"`
									} `yaml:"valueFrom"`
								} `yaml:"env"`
								VolumeMounts []struct {
									MountPath string `yaml:"mountPath"`
									Name      string `yaml:"name"`
								} `yaml:"volumeMounts"`
								ReadinessProbe struct {
									Exec struct {
										Command []string `yaml:"command"`
									} `yaml:"exec"`
								} `yaml:"readinessProbe"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			name := doc.Metadata.Name
			switch doc.Kind {
			case "Service":
				for _, p := range doc.Spec.Ports {
					out.services[name] = append(out.services[name], strconv.Itoa(p.Port))
				}
			case "PersistentVolumeClaim":
				out.claims[name] = true
			case "Deployment":
				spec := doc.Spec.Template.Spec
				require.Len(t, spec.Containers, 1, f)
				ct := spec.Containers[0]
				c := k8sContainer{Image: ct.Image, Args: ct.Args, Env: map[string]string{}, Secrets: map[string]string{},
					Mounts: map[string]string{}, Probe: ct.ReadinessProbe.Exec.Command, Volumes: map[string]map[string]any{}}
				for _, e := range ct.Env {
					if s := e.ValueFrom.SecretKeyRef.Name; s != "" {
						c.Secrets[e.Name] = s
						continue
					}
					c.Env[e.Name] = e.Value
				}
				for _, m := range ct.VolumeMounts {
					c.Mounts[m.MountPath] = m.Name
				}
				for _, p := range ct.Ports {
					c.Ports = append(c.Ports, p.ContainerPort)
				}
				for _, v := range spec.Volumes {
					c.Volumes[v["name"].(string)] = v
					if pvc, ok := v["persistentVolumeClaim"].(map[string]any); ok {
						// A claim is mounted under the claim's name.
						c.Mounts[mountOf(c.Mounts, v["name"].(string))] = pvc["claimName"].(string)
					}
				}
				out.deployments[name] = c
			}
		}
	}
	return out
}

func mountOf(mounts map[string]string, volume string) string {
	for p, v := range mounts {
		if v == volume {
			return p
		}
	}
	return ""
}
