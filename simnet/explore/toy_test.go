package explore

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
)

// explore-arrival is broken on purpose: a replica executes the commands
// submitted to it at once and broadcasts them, and executes its peers'
// commands as they arrive, so two conflicting commands submitted at two
// replicas execute in opposite orders unless one's broadcast arrives before
// the other is submitted. explore-local executes only what is submitted to
// it and sends nothing: it is correct for a single client. explore-notify
// is explore-local that also tells the next replica what it executed (a
// message the receiver counts and ignores), so what reaches a replica
// depends on whether it was up when the message was sent.
func init() {
	protocols.Register("explore-arrival", func(cfg protocols.Config) (protocols.Protocol, error) {
		return &arrival{cfg: cfg, broadcast: true}, nil
	}, arrivalCodec{})
	protocols.Register("explore-local", func(cfg protocols.Config) (protocols.Protocol, error) {
		return &arrival{cfg: cfg}, nil
	}, arrivalCodec{})
	protocols.Register("explore-notify", func(cfg protocols.Config) (protocols.Protocol, error) {
		return &arrival{cfg: cfg, notify: true}, nil
	}, arrivalCodec{})
}

type arrivalMsg struct{ Cmd protocols.Command }

type arrival struct {
	cfg       protocols.Config
	broadcast bool
	notify    bool
}

func (a *arrival) Submit(c protocols.Command) {
	a.cfg.Env.Execute(c)
	if a.notify {
		next := a.cfg.Peers[(slices.Index(a.cfg.Peers, a.cfg.Self)+1)%len(a.cfg.Peers)]
		a.cfg.Env.Send(next, arrivalMsg{Cmd: c})
	}
	if !a.broadcast {
		return
	}
	for _, p := range a.cfg.Peers {
		if p != a.cfg.Self {
			a.cfg.Env.Send(p, arrivalMsg{Cmd: c})
		}
	}
}

func (a *arrival) Step(_ protocols.NodeID, m protocols.Message) {
	if a.notify {
		return
	}
	a.cfg.Env.Execute(m.(arrivalMsg).Cmd)
}

func (a *arrival) Tick() {}

type arrivalCodec struct{}

func (arrivalCodec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	am, ok := m.(arrivalMsg)
	if !ok {
		return nil, errors.New("explore-arrival: unknown message")
	}
	j, err := json.Marshal(am)
	return append(b, j...), err
}

func (arrivalCodec) Unmarshal(b []byte) (protocols.Message, error) {
	var m arrivalMsg
	err := json.Unmarshal(b, &m)
	return m, err
}
