package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

var errChainNameTaken = &cs.Error{Code: cs.ECONFLICT, Message: "an approval chain with this name already exists",
	Fields: []cs.FieldError{{Field: "name", Message: "is already used by another approval chain"}}}

// normalizeChain trims the chain and applies the defaults: quorum 1, late
// policy expire. (distinct_approvers defaults to true where the request is
// read: a bool cannot tell "false" from "absent".)
func normalizeChain(c *cs.Chain) {
	c.Name = strings.TrimSpace(c.Name)
	if c.LatePolicy == "" {
		c.LatePolicy = cs.LateExpire
	}
	for i := range c.Steps {
		if c.Steps[i].Quorum == 0 {
			c.Steps[i].Quorum = 1
		}
		if ext := c.Steps[i].Approver.External; ext != nil {
			c.Steps[i].Approver.External = &cs.ExternalReviewer{Email: strings.ToLower(strings.TrimSpace(ext.Email)),
				Name: strings.TrimSpace(ext.Name)}
		}
	}
}

// validateChain checks the chain's shape (cs.Chain.Validate) and, against
// the org, that every member and team it names exists and that no quorum is
// larger than its team. Each problem is a field error such as
// "steps[1].quorum".
func validateChain(ctx context.Context, tx pgx.Tx, orgID string, c cs.Chain) error {
	var fields []cs.FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, cs.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Name == "":
		add("name", "is required")
	case len(c.Name) > 100:
		add("name", "is longer than 100 characters")
	}
	var e *cs.Error
	if err := c.Validate(); errors.As(err, &e) {
		fields = append(fields, e.Fields...)
	} else if err != nil {
		return err
	}
	for i, st := range c.Steps {
		p := fmt.Sprintf("steps[%d].", i)
		if id := st.Approver.Member; id != "" {
			ok := validID(id)
			if ok {
				var err error
				if ok, err = activeMember(ctx, tx, orgID, id); err != nil {
					return err
				}
			}
			if !ok {
				add(p+"approver.member", "no such member in this organization")
			}
		}
		if id := st.Approver.Team; id != "" {
			size, ok, err := teamSize(ctx, tx, orgID, id)
			switch {
			case err != nil:
				return err
			case !ok:
				add(p+"approver.team", "no such team in this organization")
			case st.NeededApprovals() > size:
				add(p+"quorum", "the team has %d active member(s): a quorum of %d cannot be reached", size, st.NeededApprovals())
			}
		}
		if ext := st.Approver.External; ext != nil && ext.Email != "" {
			// Members decide through the API or Slack, under every rule of
			// the chain; a link would let one approve as an outsider.
			var member bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members m JOIN users u ON u.id = m.user_id
				WHERE m.org_id = $1 AND m.removed_at IS NULL AND lower(u.email) = lower($2))`, orgID, ext.Email).Scan(&member); err != nil {
				return err
			}
			if member {
				add(p+"approver.external.email", "belongs to a member of this organization: name them as {\"member\": id} instead")
			}
		}
		if id := st.FallbackTeam; id != "" {
			if _, ok, err := teamSize(ctx, tx, orgID, id); err != nil {
				return err
			} else if !ok {
				add(p+"fallback_team", "no such team in this organization")
			}
		}
	}
	if len(fields) > 0 {
		return &cs.Error{Code: cs.EINVALID, Message: "invalid approval chain", Fields: fields}
	}
	return nil
}

// teamSize counts a team's active members; ok is false when the org has no
// such team.
func teamSize(ctx context.Context, tx pgx.Tx, orgID, teamID string) (size int, ok bool, err error) {
	if !validID(teamID) {
		return 0, false, nil
	}
	err = tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM team_members tm JOIN members m ON m.id = tm.member_id
		        WHERE tm.team_id = t.id AND m.removed_at IS NULL)
		FROM teams t WHERE t.org_id = $1 AND t.id = $2`, orgID, teamID).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return size, err == nil, err
}

// CreateChain validates and saves a new approval chain.
func (s *Store) CreateChain(ctx context.Context, orgID string, c cs.Chain) (cs.ApprovalChain, error) {
	normalizeChain(&c)
	c.ID = newID()
	var saved cs.ApprovalChain
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := validateChain(ctx, tx, orgID, c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO approval_chains (id, org_id, name, require_approval_for_all, late_policy, distinct_approvers)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			c.ID, orgID, c.Name, c.RequireApprovalForAll, c.LatePolicy, c.DistinctApprovers)
		if isUniqueViolation(err) {
			return errChainNameTaken
		}
		if err != nil {
			return fmt.Errorf("insert chain: %w", err)
		}
		if err := insertSteps(ctx, tx, orgID, c); err != nil {
			return err
		}
		if saved, err = readChain(ctx, tx, orgID, c.ID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "approval_chain", objectID: c.ID, action: "create", after: map[string]any{"chain": saved}})
	})
	return saved, err
}

// UpdateChain replaces a chain as a whole. Posts already submitted keep the
// snapshot they took; only later posts see the change.
func (s *Store) UpdateChain(ctx context.Context, orgID, chainID string, c cs.Chain) (cs.ApprovalChain, error) {
	normalizeChain(&c)
	c.ID = chainID
	var saved cs.ApprovalChain
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if !validID(orgID) || !validID(chainID) {
			return notFound("approval chain")
		}
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM approval_chains WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, chainID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("approval chain")
		}
		if err != nil {
			return err
		}
		if err := validateChain(ctx, tx, orgID, c); err != nil {
			return err
		}
		prev, err := readChain(ctx, tx, orgID, chainID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE approval_chains SET name = $3, require_approval_for_all = $4, late_policy = $5,
				distinct_approvers = $6, updated_at = now()
			WHERE org_id = $1 AND id = $2`,
			orgID, chainID, c.Name, c.RequireApprovalForAll, c.LatePolicy, c.DistinctApprovers)
		if isUniqueViolation(err) {
			return errChainNameTaken
		}
		if err != nil {
			return fmt.Errorf("update chain: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM approval_chain_steps WHERE chain_id = $1`, chainID); err != nil {
			return err
		}
		if err := insertSteps(ctx, tx, orgID, c); err != nil {
			return err
		}
		if saved, err = readChain(ctx, tx, orgID, chainID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "approval_chain", objectID: chainID, action: "update",
			before: map[string]any{"chain": prev}, after: map[string]any{"chain": saved}})
	})
	return saved, err
}

func insertSteps(ctx context.Context, tx pgx.Tx, orgID string, c cs.Chain) error {
	for i, st := range c.Steps {
		var role, extEmail, extName any
		if st.Approver.Role != "" {
			role = st.Approver.Role
		}
		if ext := st.Approver.External; ext != nil {
			extEmail, extName = ext.Email, ext.Name
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO approval_chain_steps (org_id, chain_id, position, approver_member_id, approver_team_id,
				approver_role, quorum, timeout_ns, fallback_team_id, fallback_timeout_ns,
				approver_external_email, approver_external_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			orgID, c.ID, i+1, nullIfEmpty(&st.Approver.Member), nullIfEmpty(&st.Approver.Team), role,
			st.NeededApprovals(), int64(st.Timeout), nullIfEmpty(&st.FallbackTeam), int64(st.FallbackTimeout),
			extEmail, extName)
		if err != nil {
			return raced(err)
		}
	}
	return nil
}

const chainColumns = `c.id, c.org_id, c.name, c.require_approval_for_all, c.late_policy, c.distinct_approvers, c.created_at, c.updated_at`

// readChain reads one chain with its steps.
func readChain(ctx context.Context, q querier, orgID, chainID string) (cs.ApprovalChain, error) {
	chains, err := queryChains(ctx, q, `SELECT `+chainColumns+` FROM approval_chains c WHERE c.org_id = $1 AND c.id = $2`, orgID, chainID)
	if err != nil {
		return cs.ApprovalChain{}, err
	}
	if len(chains) == 0 {
		return cs.ApprovalChain{}, notFound("approval chain")
	}
	return chains[0], nil
}

// queryChains runs a query selecting chainColumns and fills in the steps.
func queryChains(ctx context.Context, q querier, sql string, args ...any) ([]cs.ApprovalChain, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	chains, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.ApprovalChain, error) {
		var c cs.ApprovalChain
		err := r.Scan(&c.ID, &c.OrgID, &c.Name, &c.RequireApprovalForAll, &c.LatePolicy, &c.DistinctApprovers, &c.CreatedAt, &c.UpdatedAt)
		c.Steps = []cs.ChainStep{}
		return c, err
	})
	if err != nil || len(chains) == 0 {
		return chains, err
	}
	ids := make([]string, len(chains))
	index := map[string]int{}
	for i, c := range chains {
		ids[i] = c.ID
		index[c.ID] = i
	}
	rows, err = q.Query(ctx, `
		SELECT chain_id::text, coalesce(approver_member_id::text, ''), coalesce(approver_team_id::text, ''),
			coalesce(approver_role, ''), quorum, timeout_ns, coalesce(fallback_team_id::text, ''), fallback_timeout_ns,
			approver_external_email, coalesce(approver_external_name, '')
		FROM approval_chain_steps WHERE chain_id = ANY($1::uuid[]) ORDER BY chain_id, position`, ids)
	if err != nil {
		return nil, err
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var id string
		var st cs.ChainStep
		var timeout, fallback int64
		var extEmail *string
		var extName string
		err := r.Scan(&id, &st.Approver.Member, &st.Approver.Team, &st.Approver.Role, &st.Quorum, &timeout, &st.FallbackTeam, &fallback,
			&extEmail, &extName)
		st.Timeout, st.FallbackTimeout = cs.Duration(timeout), cs.Duration(fallback)
		if extEmail != nil {
			st.Approver.External = &cs.ExternalReviewer{Email: *extEmail, Name: extName}
		}
		if err == nil {
			chains[index[id]].Steps = append(chains[index[id]].Steps, st)
		}
		return struct{}{}, err
	})
	return chains, err
}

// Chain returns an approval chain of the org.
func (s *Store) Chain(ctx context.Context, orgID, chainID string) (cs.ApprovalChain, error) {
	if !validID(orgID) || !validID(chainID) {
		return cs.ApprovalChain{}, notFound("approval chain")
	}
	return readChain(ctx, s.pool, orgID, chainID)
}

// ListChains lists the org's approval chains by id.
func (s *Store) ListChains(ctx context.Context, orgID string, p cs.Page) ([]cs.ApprovalChain, error) {
	return queryChains(ctx, s.pool, `
		SELECT `+chainColumns+` FROM approval_chains c
		WHERE c.org_id = $1 AND ($2::uuid IS NULL OR c.id > $2)
		ORDER BY c.id LIMIT $3`, orgID, after(p), limit(p))
}

// DeleteChain deletes a chain that no account uses (EINUSE otherwise).
func (s *Store) DeleteChain(ctx context.Context, orgID, chainID string) error {
	if !validID(orgID) || !validID(chainID) {
		return notFound("approval chain")
	}
	return s.deleteUnlessUsed(ctx, orgID, chainID, deletion{
		table: "approval_chains", what: "approval chain",
		usedBy: `SELECT handle FROM accounts WHERE org_id = $1 AND approval_chain_id = $2 AND deleted_at IS NULL
			ORDER BY lower(handle)`,
		inUse:   "accounts %s use this approval chain: give them another chain first",
		usedNow: "an account now uses this approval chain: give it another chain first",
	})
}

// AccountChain is the chain a post submitted to the account now follows:
// its approval chain, or cs.DefaultChain when it has none. The workflow keeps
// it as the post's snapshot.
func (s *Store) AccountChain(ctx context.Context, orgID, accountID string) (cs.Chain, error) {
	a, err := s.Account(ctx, orgID, accountID)
	if err != nil {
		return cs.Chain{}, err
	}
	if a.ApprovalChainID == nil {
		return cs.DefaultChain(), nil
	}
	c, err := readChain(ctx, s.pool, orgID, *a.ApprovalChainID)
	return c.Chain, err
}
