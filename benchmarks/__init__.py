"""Speed and memory benchmarks. They print figures and ratios measured in one run; they assert nothing."""
