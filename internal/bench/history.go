package bench

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// billingRules are the Temporal Cloud action rules applied to histories.
var billingRules = []string{
	"WorkflowExecutionStarted = 1",
	"each WorkflowExecutionSignaled = 1",
	"each ActivityTaskScheduled = 1, plus (attempt-1) for retries seen on ActivityTaskStarted",
	"each TimerStarted = 1",
	"each UpsertWorkflowSearchAttributes = 1 (and WorkflowPropertiesModified = 1), except one that only sets TemporalChangeVersion (GetVersion's, exempt)",
	"local activities: 1 per workflow task that recorded any (all local activities of one workflow task are one action)",
	"each other MarkerRecorded = 1 (side effects), except GetVersion markers",
	"each StartChildWorkflowExecutionInitiated / SignalExternalWorkflowExecutionInitiated / RequestCancelExternalWorkflowExecutionInitiated = 1",
	"each WorkflowExecutionUpdateAccepted = 1",
	"queries and the API's own reads are not in the history and not counted (GET /approvals and the other reads answer from PostgreSQL, not Temporal)",
}

// countHistories reads every workflow's history and averages per workflow.
func countHistories(ctx context.Context, tc client.Client, ids []string) (History, error) {
	h := History{Workflows: len(ids), Actions: map[string]float64{}, EventTypes: map[string]float64{}, ActivitiesByType: map[string]float64{}}
	var mu sync.Mutex
	var firstErr error
	var events, actions float64
	waits := samples{}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var evs []*historypb.HistoryEvent
			it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				evs = append(evs, ev)
			}
			c := countEvents(evs)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range c.waits {
				waits[k] = append(waits[k], v...)
			}
			events += float64(len(evs))
			h.WorkflowTaskTimeouts += c.wftTimeouts
			for k, v := range c.eventTypes {
				h.EventTypes[k] += v
			}
			for k, v := range c.actions {
				h.Actions[k] += v
				actions += v
			}
			for k, v := range c.activities {
				h.ActivitiesByType[k] += v
			}
		}()
	}
	wg.Wait()
	h.Waits = waits.percentiles()
	if len(ids) == 0 {
		return h, firstErr
	}
	d := float64(len(ids))
	h.EventsPerPost, h.ActionsPerPost = events/d, actions/d
	for _, m := range []map[string]float64{h.Actions, h.EventTypes, h.ActivitiesByType} {
		for k := range m {
			m[k] /= d
		}
	}
	return h, firstErr
}

// historyCount is one workflow's history, counted.
type historyCount struct {
	eventTypes, actions, activities map[string]float64
	waits                           samples
	wftTimeouts                     int
}

// countEvents counts one history's events and billable actions (billingRules)
// and measures its queue waits from the event times.
func countEvents(evs []*historypb.HistoryEvent) historyCount {
	c := historyCount{eventTypes: map[string]float64{}, actions: map[string]float64{}, activities: map[string]float64{}, waits: samples{}}
	at := map[int64]time.Time{} // event id → time, for the waits
	firstWFT := true
	laTasks := map[int64]bool{} // workflow tasks that recorded local activities
	for _, ev := range evs {
		t := ev.GetEventType()
		now := ev.GetEventTime().AsTime()
		at[ev.GetEventId()] = now
		name := strings.TrimPrefix(t.String(), "EVENT_TYPE_")
		if t == enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT { // which timeout tells why
			name += "(" + strings.TrimPrefix(ev.GetWorkflowTaskTimedOutEventAttributes().GetTimeoutType().String(), "TIMEOUT_TYPE_") + ")"
			c.wftTimeouts++
		}
		c.eventTypes[name]++
		switch t {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			name := "workflow task queue wait"
			if firstWFT {
				name, firstWFT = "first workflow task queue wait", false
			}
			c.waits[name] = append(c.waits[name], now.Sub(at[ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]))
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			c.waits["workflow task run"] = append(c.waits["workflow task run"], now.Sub(at[ev.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()]))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			c.actions["workflow started"]++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			c.actions["signal"]++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			c.actions["activity"]++
			c.activities[ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()]++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if a.GetAttempt() > 1 {
				c.actions["activity retry"] += float64(a.GetAttempt() - 1)
			}
			c.waits["activity queue wait"] = append(c.waits["activity queue wait"], now.Sub(at[a.GetScheduledEventId()]))
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			c.waits["activity run"] = append(c.waits["activity run"], now.Sub(at[ev.GetActivityTaskCompletedEventAttributes().GetStartedEventId()]))
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			c.actions["timer"]++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
			if _, ok := fields["TemporalChangeVersion"]; !ok || len(fields) > 1 {
				c.actions["search attribute upsert"]++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			c.actions["search attribute upsert"]++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			m := ev.GetMarkerRecordedEventAttributes()
			switch m.GetMarkerName() {
			case "Version":
			case "LocalActivity":
				c.activities["(local) "+localActivityType(m)]++
				if wft := m.GetWorkflowTaskCompletedEventId(); !laTasks[wft] {
					laTasks[wft] = true
					c.actions["local activities"]++
				}
			default:
				c.actions["marker"]++
			}
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
			enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
			enumspb.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			c.actions["child/external"]++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			c.actions["update"]++
		}
	}
	return c
}

// localActivityType reads the activity type from a local activity marker's
// "data" details (the SDK's JSON-encoded marker data).
func localActivityType(m *historypb.MarkerRecordedEventAttributes) string {
	for _, p := range m.GetDetails()["data"].GetPayloads() {
		var d struct{ ActivityType string }
		if json.Unmarshal(p.GetData(), &d) == nil && d.ActivityType != "" {
			return d.ActivityType
		}
	}
	return "?"
}
