# The production image: the countersign binary without the embedded dev stack
# (no Temporal server linked), on a static distroless base.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/countersign ./cmd/countersign

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/countersign /countersign
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/countersign"]
CMD ["serve"]
