// Holds the benchmarks' layer list (dcgan_layers.cpp) to the model it times: for several architectures, the
// parameter sizes the list derives from its layers must equal, in order, those of the real dcgan::Generator
// and dcgan::Discriminator. A change to the model that the list does not follow fails here, instead of
// silently timing layers the model no longer has. Exit 0 when all agree; otherwise one line per difference.
#include <cstdio>
#include <vector>

#include "cudagan/dcgan.h"
#include "dcgan_layers.h"

using namespace cudagan;

namespace {

std::vector<int64_t> parameter_sizes(const nn::Module& m) {
  std::vector<int64_t> sizes;
  for (const auto& [name, p] : m.named_parameters()) sizes.push_back(p.numel());
  return sizes;
}

int compare(const char* what, const dcgan::Architecture& a, const std::vector<int64_t>& bench,
            const std::vector<int64_t>& model) {
  if (bench == model) return 0;
  std::printf("%s of DCGAN-%d (%d channels, nz %d, ngf %d, ndf %d): the layer list has %zu parameters, the model %zu",
              what, a.image_size, a.channels, a.nz, a.ngf, a.ndf, bench.size(), model.size());
  for (size_t i = 0; i < bench.size() && i < model.size(); ++i)
    if (bench[i] != model[i]) {
      std::printf("; the first to differ is #%zu: %lld elements against %lld", i, (long long)bench[i],
                  (long long)model[i]);
      break;
    }
  std::printf("\n");
  return 1;
}

dcgan::Architecture arch(int size, int channels, int nz, int ngf, int ndf) {
  dcgan::Architecture a;
  a.image_size = size, a.channels = channels, a.nz = nz, a.ngf = ngf, a.ndf = ndf;
  return a;
}

}  // namespace

int main() {
  int bad = 0;
  for (const dcgan::Architecture& a : {arch(64, 3, 100, 64, 64), arch(32, 1, 100, 32, 32), arch(16, 1, 10, 8, 12),
                                       arch(128, 3, 50, 16, 24)}) {
    bench::NetConfig config;
    config.arch = a;
    config.batch = 2;
    const bench::Network net = bench::dcgan_network(config);
    Rng rng(1);
    const dcgan::Generator g(a, rng);
    const dcgan::Discriminator d(a, rng);
    bad += compare("the generator", a, net.generator_params, parameter_sizes(g));
    bad += compare("the discriminator", a, net.discriminator_params, parameter_sizes(d));
  }
  if (bad == 0) std::printf("the benchmarks' layer list matches the model for 4 architectures\n");
  return bad == 0 ? 0 : 1;
}
