package mboxscan

// Assess fills in each mailbox's Store, StoreBytes, LimitBytes, UsedRatio
// and Level (opts' unset fields take their defaults).
//
// An mbox file is its own store. A Maildir store is the Maildir root: its
// StoreBytes is the sum of the Bytes of its folders in res (so a scan of
// one folder alone sees only that folder), and its limit is the
// Maildir++ quota's byte limit when maildirsize sets one, else opts.Limit.
// Every folder of a store gets the store's figures. Level is crit when
// the use is at least opts.Crit percent of the limit, warn when at least
// opts.Warn percent, else ok.
func Assess(res *Result, opts Options) {
	opts = opts.WithDefaults()
	type store struct {
		bytes int64
		quota *Quota
	}
	stores := map[string]*store{}
	for i := range res.Mailboxes {
		mb := &res.Mailboxes[i]
		if mb.Format != FormatMaildir {
			continue
		}
		if mb.Store == "" {
			mb.Store = mb.Path
		}
		s := stores[mb.Store]
		if s == nil {
			s = &store{}
			stores[mb.Store] = s
		}
		s.bytes += mb.Bytes
		if s.quota == nil && mb.Quota != nil && mb.Quota.LimitBytes > 0 {
			s.quota = mb.Quota
		}
	}
	for i := range res.Mailboxes {
		mb := &res.Mailboxes[i]
		limit := opts.Limit
		if s := stores[mb.Store]; mb.Format == FormatMaildir && s != nil {
			mb.StoreBytes = s.bytes
			if s.quota != nil {
				limit = s.quota.LimitBytes
			}
		} else {
			mb.Store = mb.Path
			mb.StoreBytes = mb.Bytes
		}
		mb.LimitBytes = limit
		mb.UsedRatio = float64(mb.StoreBytes) / float64(limit)
		mb.Level = opts.level(mb.StoreBytes, limit)
	}
}

// level compares used*100 with pct*limit rather than the ratio with
// pct/100: 80 bytes of 100 is exactly 80%, and no rounding of 0.8*100
// may say otherwise.
func (o Options) level(used, limit int64) Level {
	u := float64(used) * 100
	switch {
	case u >= o.Crit*float64(limit):
		return LevelCrit
	case u >= o.Warn*float64(limit):
		return LevelWarn
	}
	return LevelOK
}
