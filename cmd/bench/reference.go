package main

import (
	"context"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ReferenceWorkflow is the bare reference: three no-op activities in a row,
// the least a publish run could do (load, publish, finish).
func ReferenceWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for range 3 {
		if err := workflow.ExecuteActivity(ctx, NoopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// NoopActivity does nothing.
func NoopActivity(context.Context) error { return nil }
