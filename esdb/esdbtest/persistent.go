package esdbtest

import (
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
)

type persistentSubs struct{ srv *Server }

func newPersistentSubs(s *Server) *persistentSubs { return &persistentSubs{srv: s} }

func (p *persistentSubs) load() {}

type persistentServer struct {
	persistent.UnimplementedPersistentSubscriptionsServer
	srv *Server
}
