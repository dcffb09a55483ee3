# PostFlow: everything a developer runs, with Go as the only prerequisite.

GO              ?= go
DATA_DIR        ?= .postflow
WORKFLOWCHECK   := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# Packages light enough to run under the race detector within CI's time;
# those that link the embedded Temporal server are covered by plain runs.
RACE_PKGS       := ./api/... ./activities/... ./posts/... ./webhooks/... ./internal/ids/... ./internal/sandboxplatform/... ./connections/... ./providers/... ./workflows/... ./internal/config/... ./internal/oauthstate/... ./internal/tokencipher/... ./internal/payloadcodec/... ./media/... ./internal/netguard/... ./internal/stallproxy/...

.PHONY: dev build test unit race lint workflowcheck bench bench-media clean

## dev: run all of PostFlow in one process (embedded Temporal + Web UI, MongoDB-compatible store, Redis)
dev:
	$(GO) run ./cmd/postflow dev --data-dir $(DATA_DIR)

## build: build the postflow binary into bin/
build:
	$(GO) build -o bin/postflow ./cmd/postflow

## test: lint, check workflow determinism, run every test and the race detector where it fits
test: lint workflowcheck unit race

unit:
	$(GO) test -count=1 -timeout 15m ./...

race:
	$(GO) test -count=1 -race -timeout 10m $(RACE_PKGS)

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

## workflowcheck: Temporal's determinism checker over the workflow code
workflowcheck:
	$(GO) run $(WORKFLOWCHECK) ./workflows/...

clean:
	rm -rf bin $(DATA_DIR)

## bench: publish N posts (N=1000 by default) through the API on the embedded stack, next to a bare reference workflow; then 100 posts with four 5 MB images to 3 sandbox accounts (worker peak memory)
N ?= 1000
bench:
	$(GO) run ./cmd/bench -n $(N)

## bench-media: the media round alone
bench-media:
	$(GO) run ./cmd/bench -media-only
