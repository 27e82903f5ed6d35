"""What operators read: queue snapshots, throughput statistics, the Prometheus collector, doctor."""
