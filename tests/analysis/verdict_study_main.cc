// leakscope-verdict-study: prints the confusion matrix (truth × verdict) of
// `trend` over generated series of a sampled heap site (verdict_study.h).
// The figures in docs/cli.md ("verdict rules") come from its default run.
#include <cstdio>
#include <iostream>

#include "leakscope/core/cli11.h"
#include "verdict_study.h"

int main(int argc, char** argv) {
  CLI::App app("Confusion matrix of trend's verdicts on series with known truth",
               "leakscope-verdict-study");
  std::uint64_t seed = 13;
  int per_truth = 1000;
  bool list = false;
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--per-truth", per_truth, "series per truth")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--list-errors", list, "print every series with its verdict");
  CLI11_PARSE(app, argc, argv);

  leakscope::analysis::SymbolTable symbols;
  const auto cases = leakscope::study::generate(seed, per_truth, symbols);
  if (list) {
    for (const auto& c : cases) {
      const auto g = leakscope::study::judge(c, symbols);
      std::printf("%-10s %s\n", leakscope::analysis::verdictName(g.verdict), c.description.c_str());
    }
  }
  std::cout << "seed " << seed << ", " << per_truth << " series per truth\n"
            << leakscope::study::formatMatrix(leakscope::study::confusion(cases, symbols));
  return 0;
}
