package system

import (
	"context"
	"fmt"
	"slices"

	"github.com/eventsourcing-go/eventsourcing/projection"
)

// NewProjectionFunc builds a projection and the view it updates from the
// settings a runner gives every member of a system (read under the
// projection's name first: ORDERSSUMMARY_SQLITE_DBNAME).
type NewProjectionFunc func(ctx context.Context, env map[string]string) (projection.Projection, projection.View, error)

// Projection defines a projection member of a system: its name, the
// application it reads, and how its view is built from settings. Every
// runner runs it beside the applications, and the gRPC runner serves its
// view's query methods.
type Projection struct {
	name     string
	upstream *App
	build    NewProjectionFunc
	opts     []projection.Option
}

// NewProjection defines a projection named name that reads upstream.
func NewProjection(name string, upstream *App, build NewProjectionFunc, opts ...projection.Option) *Projection {
	return &Projection{name: name, upstream: upstream, build: build, opts: slices.Clone(opts)}
}

// Name returns the projection's name.
func (p *Projection) Name() string { return p.name }

// Upstream returns the name of the application the projection reads.
func (p *Projection) Upstream() string { return p.upstream.name }

// Options returns the projection's follow options.
func (p *Projection) Options() []projection.Option { return slices.Clone(p.opts) }

// Build constructs the projection and its view with the given settings, and
// checks that the projection reports the defined name.
func (p *Projection) Build(ctx context.Context, env map[string]string) (projection.Projection, projection.View, error) {
	proj, view, err := p.build(ctx, env)
	if err != nil {
		return nil, nil, fmt.Errorf("build projection %q: %w", p.name, err)
	}
	if proj == nil || view == nil {
		return nil, nil, fmt.Errorf("build projection %q: the constructor returned no projection or no view", p.name)
	}
	if proj.Name() != p.name {
		return nil, nil, fmt.Errorf("%w: projection defined as %q reports the name %q", ErrSystem, p.name, proj.Name())
	}
	return proj, view, nil
}

// WithProjections returns a copy of the system with these projections
// added. Each reads an application of the system, and no two members share
// a name.
func (s *System) WithProjections(ps ...*Projection) (*System, error) {
	out := *s
	out.projections = slices.Clone(s.projections)
	for _, p := range ps {
		if p == nil || p.upstream == nil || p.build == nil {
			return nil, fmt.Errorf("%w: a projection needs a name, an upstream and a constructor", ErrSystem)
		}
		if a, ok := s.byName[p.upstream.name]; !ok || a != p.upstream {
			return nil, fmt.Errorf("%w: projection %q reads %q, which is not an application of the system", ErrSystem, p.name, p.upstream.name)
		}
		if _, ok := s.byName[p.name]; ok || slices.ContainsFunc(out.projections, func(q *Projection) bool { return q.name == p.name }) {
			return nil, fmt.Errorf("%w: two members named %q", ErrSystem, p.name)
		}
		out.projections = append(out.projections, p)
	}
	return &out, nil
}

// Projections returns the system's projections, in the order added.
func (s *System) Projections() []*Projection { return slices.Clone(s.projections) }

// Projection returns the projection with the given name.
func (s *System) Projection(name string) (*Projection, bool) {
	for _, p := range s.projections {
		if p.name == name {
			return p, true
		}
	}
	return nil, false
}

// ProjectionsOf returns the projections that read the named application.
func (s *System) ProjectionsOf(name string) []*Projection {
	var out []*Projection
	for _, p := range s.projections {
		if p.upstream.name == name {
			out = append(out, p)
		}
	}
	return out
}
