import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The process-wide Prometheus registry behind swift-metrics. Bootstrapped once; every module
/// records through the swift-metrics API (`Counter(label:dimensions:)`), the metrics endpoint
/// renders this registry.
final class MetricsRegistry: Sendable {
    let registry: PrometheusCollectorRegistry

    static let shared: MetricsRegistry = {
        let r = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: r)
        factory.defaultDurationHistogramBuckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5].map { Duration.seconds($0) }
        MetricsSystem.bootstrap(factory)
        return MetricsRegistry(registry: r)
    }()

    private init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    /// The exposition text.
    func render() -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        out.append(contentsOf: ProcessMemory.current().exposition().utf8)
        return out
    }
}
