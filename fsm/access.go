package fsm

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// Per-event access grants. A grant lives in its event's shard
// ('P' <event> 0 <user> → level), so that the check of a write against the
// grants and the write itself are ordered by the same log: an organiser's
// write is proposed as Authorized{actor, need, write} and the state machine
// checks the actor's level when it applies it. A revocation committed
// before the write wins on every replica; no cache lags behind it.

// SetGrant gives User a level on Event (AccessNone revokes it), on behalf
// of Actor. Granting or revoking view needs manage; granting or revoking
// manage (or changing a manage grant) needs the owner. Admin says the actor
// is an admin (the HTTP layer verified the token), who may do anything.
type SetGrant struct {
	Event string
	Actor string
	Admin bool
	User  string
	Level boxoffice.AccessLevel
}

// Authorized runs Command on behalf of Actor if Actor holds at least Need on
// Event when it applies; else it is rejected with forbidden and changes
// nothing. Command must be a write on Event: an UpdateEvent or ProtectSale
// of it, or a CancelOrder of one of its orders.
type Authorized struct {
	Event   string
	Actor   string
	Admin   bool
	Need    boxoffice.AccessLevel
	Command Command
}

func (SetGrant) Type() Type   { return TypeSetGrant }
func (Authorized) Type() Type { return TypeAuthorized }

func encodeBool(w *writer, b bool) {
	if b {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func decodeBool(r *reader) bool {
	switch r.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail()
	return false
}

func (c *SetGrant) encode(w *writer) {
	w.str(c.Event)
	w.str(c.Actor)
	encodeBool(w, c.Admin)
	w.str(c.User)
	w.u8(uint8(c.Level))
}

func (c *SetGrant) decode(r *reader) {
	c.Event = r.str()
	c.Actor = r.str()
	c.Admin = decodeBool(r)
	c.User = r.str()
	c.Level = boxoffice.AccessLevel(r.u8())
	if c.Level > boxoffice.AccessManage {
		r.fail()
	}
}

// authorizedOK reports whether a command type may be wrapped in Authorized.
func authorizedOK(t Type) bool {
	return t == TypeUpdateEvent || t == TypeCancelOrder || t == TypeProtectSale
}

func (c *Authorized) encode(w *writer) {
	w.str(c.Event)
	w.str(c.Actor)
	encodeBool(w, c.Admin)
	w.u8(uint8(c.Need))
	w.bytes(EncodeCommand(c.Command))
}

func (c *Authorized) decode(r *reader) {
	c.Event = r.str()
	c.Actor = r.str()
	c.Admin = decodeBool(r)
	c.Need = boxoffice.AccessLevel(r.u8())
	if c.Need < boxoffice.AccessView || c.Need > boxoffice.AccessOwner {
		r.fail()
	}
	inner := r.bytesMax(CommandBytesMax)
	if r.err != nil {
		return
	}
	cmd, err := DecodeCommand(inner)
	if err != nil || !authorizedOK(cmd.Type()) {
		r.fail()
		return
	}
	c.Command = cmd
}

func grantKey(event, user string) []byte { return key(tagGrant, event, user) }

func encodeGrant(l boxoffice.AccessLevel) []byte { return []byte{valueVersion, uint8(l)} }

func decodeGrant(b []byte) (boxoffice.AccessLevel, error) {
	if len(b) != 2 || b[0] != valueVersion || b[1] < uint8(boxoffice.AccessView) || b[1] > uint8(boxoffice.AccessManage) {
		return 0, fmt.Errorf("grant value %x: %w", b, errMalformed)
	}
	return boxoffice.AccessLevel(b[1]), nil
}

// accessLevel is what user may do on ev: everything as an admin or its
// organiser, else what its grant gives.
func accessLevel(ev *boxoffice.Event, user string, admin bool, grant func() (boxoffice.AccessLevel, error)) (boxoffice.AccessLevel, error) {
	if admin || (user != "" && ev.Organiser == user) {
		return boxoffice.AccessOwner, nil
	}
	return grant()
}

func (a *applier) grant(event, user string) (boxoffice.AccessLevel, error) {
	v, ok, err := a.get(grantKey(event, user))
	if err != nil || !ok {
		return boxoffice.AccessNone, err
	}
	return decodeGrant(v)
}

// countGrants counts the grants of an event (at most GrantsPerEventMax+1
// are read).
func (a *applier) countGrants(event string) (int, error) {
	p := prefix(tagGrant, event)
	it, err := a.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid() && n <= boxoffice.GrantsPerEventMax; it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}

func (a *applier) setGrant(c *SetGrant) (Result, error) {
	if !boxoffice.ValidID(c.User) || !boxoffice.ValidID(c.Actor) {
		return reject(boxoffice.CodeInvalidArgument, "user %q and actor %q must be valid ids", c.User, c.Actor)
	}
	if c.Level > boxoffice.AccessManage {
		return reject(boxoffice.CodeInvalidArgument, "a grant gives view or manage, not %s", c.Level)
	}
	ei, err := a.event(c.Event)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", c.Event)
	}
	if c.User == ei.ev.Organiser {
		return reject(boxoffice.CodeInvalidArgument, "user %q owns event %q: a grant would give nothing", c.User, c.Event)
	}
	have, err := accessLevel(ei.ev, c.Actor, c.Admin, func() (boxoffice.AccessLevel, error) { return a.grant(c.Event, c.Actor) })
	if err != nil {
		return Result{}, err
	}
	cur, err := a.grant(c.Event, c.User)
	if err != nil {
		return Result{}, err
	}
	need := boxoffice.AccessManage
	if c.Level == boxoffice.AccessManage || cur == boxoffice.AccessManage {
		need = boxoffice.AccessOwner
	}
	if have < need {
		return reject(boxoffice.CodeForbidden, "%q may not change a %s grant on event %q", c.Actor, max(c.Level, cur), c.Event)
	}
	g := &boxoffice.Grant{User: c.User, Level: c.Level}
	if c.Level == boxoffice.AccessNone {
		if cur != boxoffice.AccessNone {
			if err := a.del(grantKey(c.Event, c.User)); err != nil {
				return Result{}, err
			}
		}
		return Result{Grant: g}, nil
	}
	if cur == boxoffice.AccessNone {
		n, err := a.countGrants(c.Event)
		if err != nil {
			return Result{}, err
		}
		if n >= boxoffice.GrantsPerEventMax {
			return reject(boxoffice.CodeInvalidArgument, "event %q has %d grants, the most it may have", c.Event, boxoffice.GrantsPerEventMax)
		}
	}
	if err := a.set(grantKey(c.Event, c.User), encodeGrant(c.Level)); err != nil {
		return Result{}, err
	}
	return Result{Grant: g}, nil
}

func (a *applier) authorized(c *Authorized) (Result, error) {
	if !boxoffice.ValidID(c.Actor) {
		return reject(boxoffice.CodeInvalidArgument, "actor %q is not a valid id", c.Actor)
	}
	ei, err := a.event(c.Event)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", c.Event)
	}
	// The inner command must act on this event, or the check would be of
	// the wrong event's grants.
	switch in := c.Command.(type) {
	case *UpdateEvent:
		if in.Event.ID != c.Event {
			return reject(boxoffice.CodeInvalidArgument, "update of event %q authorized on event %q", in.Event.ID, c.Event)
		}
	case *ProtectSale:
		if in.Event != c.Event {
			return reject(boxoffice.CodeInvalidArgument, "protection of event %q authorized on event %q", in.Event, c.Event)
		}
	case *CancelOrder:
		o, err := a.getOrder(in.Order)
		if err != nil {
			return Result{}, err
		}
		if o == nil {
			return reject(boxoffice.CodeOrderNotFound, "order %q", in.Order)
		}
		if o.Event != c.Event {
			return reject(boxoffice.CodeInvalidArgument, "order %q is not of event %q", in.Order, c.Event)
		}
	default:
		return Result{}, fmt.Errorf("authorized command of type %d", c.Command.Type())
	}
	have, err := accessLevel(ei.ev, c.Actor, c.Admin, func() (boxoffice.AccessLevel, error) { return a.grant(c.Event, c.Actor) })
	if err != nil {
		return Result{}, err
	}
	if have < c.Need {
		return reject(boxoffice.CodeForbidden, "%q needs %s on event %q and has %s", c.Actor, c.Need, c.Event, have)
	}
	return a.apply(c.Command)
}

// Access returns what user may do on event (admin: the caller is an admin):
// owner, the level of a grant, or none. ErrEventNotFound if there is no
// such event.
func (s *Store) Access(event, user string, admin bool) (boxoffice.AccessLevel, error) {
	ev, err := s.Event(event)
	if err != nil {
		return boxoffice.AccessNone, err
	}
	return accessLevel(ev, user, admin, func() (boxoffice.AccessLevel, error) {
		v, ok, err := s.get(grantKey(event, user))
		if err != nil || !ok {
			return boxoffice.AccessNone, err
		}
		return decodeGrant(v)
	})
}

// Grants lists the grants of an event in user order.
func (s *Store) Grants(event string) ([]boxoffice.Grant, error) {
	if _, err := s.Event(event); err != nil {
		return nil, err
	}
	p := prefix(tagGrant, event)
	var out []boxoffice.Grant
	err := s.scan(p, upperBound(p), func(k, v []byte) (bool, error) {
		l, err := decodeGrant(v)
		if err != nil {
			return false, err
		}
		out = append(out, boxoffice.Grant{User: string(k[len(p):]), Level: l})
		return len(out) < boxoffice.GrantsPerEventMax, nil
	})
	return out, err
}
