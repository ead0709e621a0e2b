package bench

import (
	"context"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// billingRules are the Temporal Cloud action rules applied to histories.
var billingRules = []string{
	"WorkflowExecutionStarted = 1",
	"each WorkflowExecutionSignaled = 1",
	"each ActivityTaskScheduled = 1, plus (attempt-1) for retries seen on ActivityTaskStarted",
	"each TimerStarted = 1",
	"each UpsertWorkflowSearchAttributes = 1 (and WorkflowPropertiesModified = 1)",
	"each MarkerRecorded = 1 (side effects, local activities) except GetVersion markers",
	"each StartChildWorkflowExecutionInitiated / SignalExternalWorkflowExecutionInitiated / RequestCancelExternalWorkflowExecutionInitiated = 1",
	"each WorkflowExecutionUpdateAccepted = 1",
	"queries and the API's own reads are not in the history and not counted (the bench's polling reads PostgreSQL, not Temporal)",
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
			evs, acts := map[string]float64{}, map[string]float64{}
			byAct := map[string]float64{}
			n := 0.0
			at := map[int64]time.Time{} // event id → time, for the waits
			w := samples{}
			firstWFT := true
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
				n++
				t := ev.GetEventType()
				now := ev.GetEventTime().AsTime()
				at[ev.GetEventId()] = now
				switch t {
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
					name := "workflow task queue wait"
					if firstWFT {
						name, firstWFT = "first workflow task queue wait", false
					}
					w[name] = append(w[name], now.Sub(at[ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]))
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
					w["activity queue wait"] = append(w["activity queue wait"], now.Sub(at[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]))
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
					w["activity run"] = append(w["activity run"], now.Sub(at[ev.GetActivityTaskCompletedEventAttributes().GetStartedEventId()]))
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
					w["workflow task run"] = append(w["workflow task run"], now.Sub(at[ev.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()]))
				}
				name := strings.TrimPrefix(t.String(), "EVENT_TYPE_")
				evs[name]++
				switch t {
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
					acts["workflow started"]++
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
					acts["signal"]++
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
					acts["activity"]++
					byAct[ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()]++
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
					if a := ev.GetActivityTaskStartedEventAttributes().GetAttempt(); a > 1 {
						acts["activity retry"] += float64(a - 1)
					}
				case enumspb.EVENT_TYPE_TIMER_STARTED:
					acts["timer"]++
				case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
					acts["search attribute upsert"]++
				case enumspb.EVENT_TYPE_MARKER_RECORDED:
					if ev.GetMarkerRecordedEventAttributes().GetMarkerName() != "Version" {
						acts["marker"]++
					}
				case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
					enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
					enumspb.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
					acts["child/external"]++
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
					acts["update"]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range w {
				waits[k] = append(waits[k], v...)
			}
			events += n
			for k, v := range evs {
				h.EventTypes[k] += v
			}
			for k, v := range acts {
				h.Actions[k] += v
				actions += v
			}
			for k, v := range byAct {
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
