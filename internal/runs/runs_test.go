package runs

import (
	"context"
	"errors"
	"net"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/postflow/postflow/posts"
)

// frontend is a Temporal frontend that answers StartWorkflowExecution
// with start's outcome: the real SDK client talks to it over gRPC, so
// what the SDK does with the server's answer is what the test sees.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	start    func(*workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error)
	describe func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

func (f *frontend) DescribeWorkflowExecution(_ context.Context, req *workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return f.describe(req)
}

func (f *frontend) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

func (f *frontend) StartWorkflowExecution(_ context.Context, req *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
	return f.start(req)
}

func dialFrontend(t *testing.T, f *frontend) client.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c, err := client.Dial(client.Options{HostPort: lis.Addr().String(), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestStartUnpublish: a second unpublish while one runs is refused
// (posts.ErrUnpublishRunning, the API's 409 unpublish_running), never
// answered with the running run, which deletes only the accounts it was
// started with: the caller would be told its accounts are being
// unpublished while nothing deletes them.
func TestStartUnpublish(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(*workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error)
		wantRun string
		wantErr error
	}{
		{
			name: "started",
			answer: func(*workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
				return &workflowservice.StartWorkflowExecutionResponse{RunId: "new-run", Started: true}, nil
			},
			wantRun: "new-run",
		},
		{
			name: "one running",
			answer: func(req *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
				// On the wire, as the server sends it.
				return nil, serviceerror.ToStatus(serviceerror.NewWorkflowExecutionAlreadyStarted("running", req.GetRequestId(), "running-run")).Err()
			},
			wantErr: posts.ErrUnpublishRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			c := dialFrontend(t, &frontend{start: func(req *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
				ids = append(ids, req.GetWorkflowId())
				return tt.answer(req)
			}})
			r := &Posts{Client: c, TaskQueue: "q"}
			p := &posts.Post{ID: "6b0d107e28864fc46deb4d57", OrganizationID: "org"}
			run, err := r.StartUnpublish(context.Background(), p, []string{"6b0d0ffdf2326003b669ad16"})
			if !errors.Is(err, tt.wantErr) || run != tt.wantRun {
				t.Fatalf("StartUnpublish = %q, %v; want %q, %v", run, err, tt.wantRun, tt.wantErr)
			}
			if len(ids) != 1 || ids[0] != "unpublish:"+p.ID {
				t.Fatalf("started workflow ids %v, want [unpublish:%s]", ids, p.ID)
			}
		})
	}
}

// TestUnpublishing: what a publish or retry asks before it forgets
// results (posts.ErrUnpublishRunning while the run has not ended).
func TestUnpublishing(t *testing.T) {
	describing := func(status enumspb.WorkflowExecutionStatus) func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
		return func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: status}}, nil
		}
	}
	tests := []struct {
		name     string
		describe func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error)
		want     bool
		wantErr  bool
	}{
		{name: "running", describe: describing(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING), want: true},
		{name: "completed", describe: describing(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)},
		{name: "terminated", describe: describing(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)},
		{name: "never started", describe: func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			return nil, serviceerror.ToStatus(serviceerror.NewNotFound("no such workflow")).Err()
		}},
		{name: "refused", describe: func(*workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			return nil, serviceerror.ToStatus(serviceerror.NewInvalidArgument("bad")).Err()
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			c := dialFrontend(t, &frontend{describe: func(req *workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
				asked = append(asked, req.GetExecution().GetWorkflowId())
				return tt.describe(req)
			}})
			r := &Posts{Client: c, TaskQueue: "q"}
			got, err := r.Unpublishing(context.Background(), "6b0d107e28864fc46deb4d57")
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("Unpublishing = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if len(asked) != 1 || asked[0] != "unpublish:6b0d107e28864fc46deb4d57" {
				t.Fatalf("described %v", asked)
			}
		})
	}
}
