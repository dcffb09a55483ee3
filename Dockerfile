# One image for both production roles: `postflow api` and `postflow worker`.
# Go only: the SQLite code the dev stack embeds is pure Go, so the binary is
# static and runs on a distroless base.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/postflow ./cmd/postflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/postflow /usr/local/bin/postflow
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/postflow"]
CMD ["api"]
