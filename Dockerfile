# quantserve on Debian bookworm. Both stages use the repo's own install
# script, so the steps here are the ones CI runs (tools/setup.sh test); the
# build stage skips the test-only packages (torch, clang, Prometheus).
#
#   docker build -t quantserve .
#   docker run -p 8500:8500 -p 9090:9090 quantserve

FROM debian:bookworm AS build
WORKDIR /src
COPY tools/install_deps.sh tools/install_deps.sh
RUN tools/install_deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN tools/build.sh -DQUANTSERVE_BUILD_TESTS=OFF

FROM debian:bookworm AS runtime
COPY tools/install_deps.sh /tmp/install_deps.sh
RUN /tmp/install_deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install_deps.sh \
 && useradd --system --uid 10001 --home /opt/quantserve quantserve
WORKDIR /opt/quantserve
COPY --from=build /src/build/server/quantserve /usr/local/bin/quantserve
COPY --from=build /src/build/tools/client/quantserve-client /usr/local/bin/quantserve-client
COPY models/ models/
COPY config/quantserve.yaml config/quantserve.yaml
USER 10001
EXPOSE 8500 9090
# Ready = every model variant quantized, compiled and loaded, not draining.
# Start-up quantizes all variants, hence the start period.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["/usr/local/bin/quantserve", "probe", "--address", "127.0.0.1:8500"]
ENTRYPOINT ["/usr/local/bin/quantserve"]
CMD ["serve", "--config", "/opt/quantserve/config/quantserve.yaml"]
