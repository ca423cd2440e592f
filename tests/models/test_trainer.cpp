// dcgan::Trainer on the built-in synthetic set with tiny networks: the events fire at the scheduled
// steps and in order, max_steps stops where it should, a run of 2N steps equals N steps + checkpoint
// + resume + N steps bit for bit on the CPU, the NaN guard stops at the step named, and the loop
// trains networks that are not dcgan::Generator / Discriminator.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <functional>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/trainer.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {

constexpr int kImages = 40, kBatch = 8;  // 5 batches an epoch

dcgan::Architecture tiny_arch() {
  dcgan::Architecture a;
  a.image_size = 16;
  a.channels = 3;
  a.nz = 8;
  a.ngf = 4;
  a.ndf = 4;
  return a;
}

// Everything one run needs, built from seed 1 as dcgan_train builds it (on the CPU, no workers).
struct Tiny {
  std::unique_ptr<data::Dataset> dataset = data::open_synthetic(16, 3, kImages);
  data::DataLoader loader{*dataset, kBatch, 7, 0};
  Rng init{1};
  dcgan::Generator g{tiny_arch(), init};
  dcgan::Discriminator d{tiny_arch(), init};
  optim::Adam opt_g{g.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0.0}};
  optim::Adam opt_d{d.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0.0}};
  Tiny() {
    dcgan::init_weights(g, init);
    dcgan::init_weights(d, init);
  }
  dcgan::Trainer trainer(const dcgan::Schedule& s) {
    return dcgan::Trainer({g, d, opt_g, opt_d}, loader, dcgan::gaussian_noise(8), init.split(), s);
  }
  // Every parameter and buffer value of both networks, in order.
  std::vector<double> weights() const {
    std::vector<double> all;
    for (const nn::Module* m : {static_cast<const nn::Module*>(&g), static_cast<const nn::Module*>(&d)}) {
      for (const Tensor& t : m->parameters())
        for (double v : t.to_vector()) all.push_back(v);
      for (const Tensor& t : m->buffers())
        for (double v : t.to_vector()) all.push_back(v);
    }
    return all;
  }
};

// An on_step callback that appends each step's statistics to `into`.
std::function<void(const dcgan::StepReport&)> keep_stats(std::vector<dcgan::StepStats>& into) {
  return [&into](const dcgan::StepReport& r) { into.push_back(r.stats); };
}

dcgan::Schedule schedule(int64_t epochs, int64_t max_steps) {
  dcgan::Schedule s;
  s.epochs = epochs;
  s.max_steps = max_steps;
  s.log_every = 3;
  s.sample_every = 2;      // step 10 ends epoch 1 and is a multiple: one sample, not two
  s.checkpoint_every = 4;  // step 8 is a multiple and, with max_steps 8, the stop: one checkpoint
  s.collapse_loss = 100;   // every loss is "low": the warning fires after collapse_steps steps, once
  s.collapse_steps = 3;
  return s;
}

const char* kind_name(dcgan::CheckpointDue::Kind k) {
  switch (k) {
    case dcgan::CheckpointDue::Kind::periodic:
      return "p";
    case dcgan::CheckpointDue::Kind::epoch_end:
      return "e";
    case dcgan::CheckpointDue::Kind::stop:
      return "s";
    case dcgan::CheckpointDue::Kind::timed:
      return "t";
    case dcgan::CheckpointDue::Kind::interrupted:
      return "i";
  }
  return "?";
}

// Every event as a short token, in the order fired: "step3" on_step of step 3, "log3", "sample3",
// "ckpt-p4" (periodic; e: epoch end, s: stop, t: timed, i: interrupted), "warn3", "epoch1", "first",
// "finish10"; with evaluations, "eval5" (on_eval after step 5). run() must return `outcome`.
std::vector<std::string> record(dcgan::Trainer& t, dcgan::Outcome outcome = dcgan::Outcome::finished,
                                bool evaluations = false) {
  auto events = std::make_shared<std::vector<std::string>>();
  dcgan::Callbacks& c = t.callbacks();
  if (evaluations)
    c.on_eval = [events](const dcgan::EvalDue& due) { events->push_back("eval" + std::to_string(due.state.step)); };
  c.on_first_batch = [events](const data::Batch& b) {
    CHECK(b.images.size(0) == kBatch);
    events->push_back("first");
  };
  auto on_step = c.on_step;  // the test's own, if any, runs first
  c.on_step = [events, on_step](const dcgan::StepReport& r) {
    if (on_step) on_step(r);
    events->push_back("step" + std::to_string(r.step));
  };
  c.on_log = [events](const dcgan::StepReport& r) { events->push_back("log" + std::to_string(r.step)); };
  c.on_sample = [events](int64_t step) { events->push_back("sample" + std::to_string(step)); };
  c.on_checkpoint = [events](const dcgan::CheckpointDue& due) {
    events->push_back(std::string("ckpt-") + kind_name(due.kind) + std::to_string(due.state.step));
  };
  c.on_collapse_warning = [events](const dcgan::StepReport& r) {
    events->push_back("warn" + std::to_string(r.step));
  };
  c.on_epoch_end = [events](int64_t n) { events->push_back("epoch" + std::to_string(n)); };
  c.on_finish = [events](const dcgan::TrainingState& s) {
    events->push_back("finish" + std::to_string(s.step));
  };
  REQUIRE(t.run() == outcome);
  return *events;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text + " ")
    if (c == ' ') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  return out;
}

}  // namespace

TEST_CASE("Trainer: events fire at the scheduled steps, in order", "[trainer]") {
  Tiny run;
  dcgan::Trainer t = run.trainer(schedule(2, 0));
  REQUIRE(t.batches_per_epoch() == 5);
  REQUIRE(t.total_steps() == 10);
  // log every 3 and at each epoch's last step (5, 10); samples every 2 inside an epoch and at its end;
  // checkpoints every 4 inside an epoch, and at its end; the collapse warning once, at step 3.
  const std::vector<std::string> expected = split(
      "first step1 step2 sample2 warn3 step3 log3 step4 sample4 ckpt-p4 step5 log5 sample5 ckpt-e5 epoch1 "
      "step6 log6 sample6 step7 step8 sample8 ckpt-p8 step9 log9 step10 log10 sample10 ckpt-e10 epoch2 "
      "finish10");
  CHECK(record(t) == expected);
  const dcgan::TrainingState end = t.state();
  CHECK(end.step == 10);
  CHECK(end.epoch == 2);
  CHECK(end.batch_in_epoch == 0);
}

TEST_CASE("Trainer: max_steps stops inside an epoch, and a run already there does nothing", "[trainer]") {
  Tiny run;
  dcgan::Trainer t = run.trainer(schedule(3, 8));
  REQUIRE(t.total_steps() == 8);
  const std::vector<std::string> expected = split(
      "first step1 step2 sample2 warn3 step3 log3 step4 sample4 ckpt-p4 step5 log5 sample5 ckpt-e5 epoch1 "
      "step6 log6 sample6 step7 step8 log8 sample8 ckpt-s8 finish8");
  CHECK(record(t) == expected);
  const dcgan::TrainingState end = t.state();
  CHECK(end.step == 8);
  CHECK(end.epoch == 1);
  CHECK(end.batch_in_epoch == 3);

  dcgan::Trainer again = run.trainer(schedule(3, 8));
  again.resume(end);
  CHECK(record(again) == split("finish8"));
  CHECK(run.trainer(schedule(3, 100)).total_steps() == 15);  // the epochs end first
}

TEST_CASE("Trainer: 2N steps equal N steps, a checkpoint, a resume and N more (CPU, bit-identical)",
          "[trainer][resume]") {
  constexpr int64_t kHalf = 4, kWhole = 2 * kHalf;  // the resume lands inside epoch 0; epoch 1 starts at 6
  std::vector<dcgan::StepStats> whole_stats, split_stats;
  Tiny whole;
  dcgan::Trainer a = whole.trainer(schedule(2, kWhole));
  a.callbacks().on_step = keep_stats(whole_stats);
  REQUIRE(a.run() == dcgan::Outcome::finished);

  test::TempDir tmp;
  const std::string path = tmp.file("half.safetensors");
  {
    Tiny first;
    dcgan::Trainer b = first.trainer(schedule(2, kHalf));
    b.callbacks().on_step = keep_stats(split_stats);
    b.callbacks().on_checkpoint = [&](const dcgan::CheckpointDue& due) {
      if (due.kind == dcgan::CheckpointDue::Kind::stop)
        dcgan::save_checkpoint(path, first.g, first.d, first.opt_g, first.opt_d, due.state);
    };
    REQUIRE(b.run() == dcgan::Outcome::finished);
  }
  Tiny second;  // fresh objects: everything that continues must come from the file
  dcgan::Trainer c = second.trainer(schedule(2, kWhole));
  c.resume(dcgan::load_checkpoint(path, second.g, second.d, second.opt_g, second.opt_d));
  REQUIRE(c.state().step == kHalf);
  c.callbacks().on_step = keep_stats(split_stats);
  REQUIRE(c.run() == dcgan::Outcome::finished);

  REQUIRE(whole_stats.size() == size_t(kWhole));
  REQUIRE(split_stats.size() == size_t(kWhole));
  for (size_t i = 0; i < whole_stats.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(split_stats[i].loss_d == whole_stats[i].loss_d);
    CHECK(split_stats[i].loss_g == whole_stats[i].loss_g);
    CHECK(split_stats[i].d_x == whole_stats[i].d_x);
    CHECK(split_stats[i].d_g_z1 == whole_stats[i].d_g_z1);
    CHECK(split_stats[i].d_g_z2 == whole_stats[i].d_g_z2);
  }
  CHECK(second.weights() == whole.weights());
  CHECK(c.state().rng == a.state().rng);
}

TEST_CASE("Trainer: a NaN loss stops at the step named, before any event of that step", "[trainer][nan]") {
  // after_backward sees D, then G, with their gradients, before each Adam step. At step 3 it sets D's
  // learning rate to 1e30: D's weights blow up, and G's loss through that D is NaN in the same step.
  Tiny run;
  dcgan::Trainer t = run.trainer(schedule(2, 0));
  int64_t step = 1;
  std::vector<std::string> seen;
  t.callbacks().after_backward = [&](nn::Module& net) {
    const bool is_d = &net == &run.d;
    seen.push_back(is_d ? "D" : "G");
    for (const Tensor& p : net.parameters()) REQUIRE(p.grad().defined());
    if (is_d && step == 3) run.opt_d.set_lr(1e30);
    if (!is_d) ++step;
  };
  std::vector<int64_t> checkpoints, nan_steps;
  bool finished = false;
  t.callbacks().on_checkpoint = [&](const dcgan::CheckpointDue& due) {
    checkpoints.push_back(due.state.step);
  };
  t.callbacks().on_finish = [&](const dcgan::TrainingState&) { finished = true; };
  SECTION("with on_nan: run() returns diverged") {
    std::vector<int64_t> steps;
    t.callbacks().on_step = [&](const dcgan::StepReport& r) { steps.push_back(r.step); };
    t.callbacks().on_nan = [&](const dcgan::StepReport& r) {
      nan_steps.push_back(r.step);
      CHECK(dcgan::divergence_message(r) == "Loss_G became NaN/Inf at step 3: training stopped");
    };
    CHECK(t.run() == dcgan::Outcome::diverged);
    CHECK(steps == std::vector<int64_t>{1, 2});  // the NaN step gets no on_step
    CHECK(nan_steps == std::vector<int64_t>{3});
    CHECK(seen == std::vector<std::string>{"D", "G", "D", "G", "D", "G"});
  }
  SECTION("without on_nan: run() throws, naming the step") {
    REQUIRE_THROWS_WITH(t.run(), Contains("Loss_G became NaN/Inf at step 3"));
  }
  CHECK(t.state().step == 3);
  CHECK(checkpoints.empty());  // checkpoint_every 4: none yet, and none for the NaN step
  CHECK_FALSE(finished);
}

TEST_CASE("Trainer: trains networks of its caller's own (2-D noise, MLPs)", "[trainer]") {
  // G: z [N, 16] -> Linear -> Tanh -> [N, 3, 16, 16]; D: image -> Flatten -> Linear -> logit [N].
  class MlpGenerator : public nn::Module {
   public:
    explicit MlpGenerator(Rng& rng)
        : fc_(register_module("fc", std::make_shared<nn::Linear>(rng, 16, 768))) {}
    Tensor forward(const Tensor& z) override { return reshape(tanh((*fc_)(z)), {z.size(0), 3, 16, 16}); }

   private:
    std::shared_ptr<nn::Linear> fc_;
  };
  class MlpDiscriminator : public nn::Module {
   public:
    explicit MlpDiscriminator(Rng& rng)
        : fc_(register_module("fc", std::make_shared<nn::Linear>(rng, 768, 1))) {}
    Tensor forward(const Tensor& x) override {
      return reshape((*fc_)(reshape(x, {x.size(0), 768})), {x.size(0)});
    }

   private:
    std::shared_ptr<nn::Linear> fc_;
  };
  const auto dataset = data::open_synthetic(16, 3, kImages);
  data::DataLoader loader(*dataset, kBatch, 3, 0);
  Rng rng(2);
  MlpGenerator g(rng);
  MlpDiscriminator d(rng);
  optim::Adam opt_g(g.parameters(), {1e-3, 0.5, 0.999, 1e-8, 0.0}),
      opt_d(d.parameters(), {1e-3, 0.5, 0.999, 1e-8, 0.0});
  const std::vector<double> before = g.parameters().front().to_vector();
  dcgan::Schedule s;
  s.epochs = 1;
  s.max_steps = 3;
  dcgan::Trainer t(
      {g, d, opt_g, opt_d}, loader,
      [](int64_t n, Rng& r, Device device) {
        return Tensor::randn({n, 16}, r, DType::float32, device);
      },
      rng.split(), s);
  std::vector<dcgan::StepStats> stats;
  t.callbacks().on_step = [&](const dcgan::StepReport& r) { stats.push_back(r.stats); };
  REQUIRE(t.run() == dcgan::Outcome::finished);
  REQUIRE(stats.size() == 3);
  for (const dcgan::StepStats& st : stats)
    CHECK((st.loss_d > 0 && st.loss_g > 0 && st.d_x > 0 && st.d_x < 1));
  CHECK(g.parameters().front().to_vector() != before);  // G was updated
}

TEST_CASE("Trainer: evaluations at each epoch's end by default, every N steps and at the end, or never",
          "[trainer]") {
  Tiny run;
  // -1 (the default): each epoch's end (5, 10), after its sample and before its checkpoint; also the end
  // that max_steps makes inside an epoch.
  dcgan::Schedule s = schedule(2, 0);
  REQUIRE(s.eval_every == -1);
  dcgan::Trainer by_epoch = run.trainer(s);
  CHECK(record(by_epoch, dcgan::Outcome::finished, true) ==
        split("first step1 step2 sample2 warn3 step3 log3 step4 sample4 ckpt-p4 step5 log5 sample5 eval5 ckpt-e5 "
              "epoch1 step6 log6 sample6 step7 step8 sample8 ckpt-p8 step9 log9 step10 log10 sample10 eval10 "
              "ckpt-e10 epoch2 finish10"));
  dcgan::Trainer stopped = run.trainer(schedule(3, 7));
  const std::vector<std::string> at_stop = record(stopped, dcgan::Outcome::finished, true);
  CHECK(std::count(at_stop.begin(), at_stop.end(), "eval5") == 1);
  CHECK(std::count(at_stop.begin(), at_stop.end(), "eval7") == 1);
  // N: every N steps inside an epoch and at its end when a multiple, and at the run's end, once.
  s.eval_every = 3;
  dcgan::Trainer every = run.trainer(s);
  std::vector<std::string> evals;
  for (const std::string& e : record(every, dcgan::Outcome::finished, true))
    if (e.rfind("eval", 0) == 0) evals.push_back(e);
  CHECK(evals == split("eval3 eval6 eval9 eval10"));
  // 0: never.
  s.eval_every = 0;
  dcgan::Trainer never = run.trainer(s);
  const std::vector<std::string> none = record(never, dcgan::Outcome::finished, true);
  CHECK(std::none_of(none.begin(), none.end(), [](const std::string& e) { return e.rfind("eval", 0) == 0; }));
  s.eval_every = -2;
  REQUIRE_THROWS_WITH(run.trainer(s), Contains("eval_every"));
}

TEST_CASE("Trainer: rejects a schedule it cannot run", "[trainer]") {
  Tiny run;
  dcgan::Schedule s;
  s.log_every = 0;
  REQUIRE_THROWS_WITH(run.trainer(s), Contains("must be positive"));
  s = {};
  s.max_steps = -1;
  REQUIRE_THROWS_WITH(run.trainer(s), Contains("max_steps"));
  s = {};
  s.epochs = 0;
  REQUIRE_THROWS_WITH(run.trainer(s), Contains("epochs"));
}

TEST_CASE("Trainer: a stop request ends the run after the step, with a checkpoint that resumes exactly",
          "[trainer][stop][resume]") {
  SECTION("inside an epoch: a sample and an interrupted checkpoint (not the periodic one), no finish") {
    Tiny run;
    dcgan::Trainer t = run.trainer(schedule(2, 0));
    t.callbacks().on_step = [&t](const dcgan::StepReport& r) {
      if (r.step == 4) t.request_stop();  // step 4 is also a periodic checkpoint's: only one fires
    };
    CHECK(record(t, dcgan::Outcome::interrupted) ==
          split("first step1 step2 sample2 warn3 step3 log3 step4 sample4 ckpt-i4"));
    CHECK(t.state().step == 4);
    // The request was used up: run() again continues to the end.
    t.callbacks() = {};
    CHECK(t.run() == dcgan::Outcome::finished);
    CHECK(t.state().step == 10);
  }
  SECTION("at an epoch's end: its own checkpoint and on_epoch_end, then the stop") {
    Tiny run;
    dcgan::Trainer t = run.trainer(schedule(2, 0));
    int64_t steps = 0;
    t.callbacks().should_stop = [&steps] { return ++steps == 5; };  // asked once a step
    CHECK(record(t, dcgan::Outcome::interrupted) ==
          split("first step1 step2 sample2 warn3 step3 log3 step4 sample4 ckpt-p4 step5 log5 sample5 ckpt-e5 "
                "epoch1"));
    CHECK(t.state().step == 5);
  }
  SECTION("at the run's last step: a normal finish") {
    Tiny run;
    dcgan::Trainer t = run.trainer(schedule(2, 3));
    t.callbacks().should_stop = [&t] { return t.state().step >= 3; };
    CHECK(record(t) == split("first step1 step2 sample2 warn3 step3 log3 sample3 ckpt-s3 finish3"));
  }

  // Bit-identical: 8 steps straight equal a run stopped after step 3 and resumed from its checkpoint.
  constexpr int64_t kWhole = 8, kStop = 3;
  std::vector<dcgan::StepStats> whole_stats, split_stats;
  Tiny whole;
  dcgan::Trainer a = whole.trainer(schedule(2, kWhole));
  a.callbacks().on_step = keep_stats(whole_stats);
  REQUIRE(a.run() == dcgan::Outcome::finished);

  test::TempDir tmp;
  const std::string path = tmp.file("stopped.safetensors");
  int64_t saved_step = -1;
  {
    Tiny first;
    dcgan::Trainer b = first.trainer(schedule(2, kWhole));
    b.callbacks().on_step = [&](const dcgan::StepReport& r) {
      split_stats.push_back(r.stats);
      if (r.step == kStop) b.request_stop();
    };
    b.callbacks().on_checkpoint = [&](const dcgan::CheckpointDue& due) {
      REQUIRE(due.kind == dcgan::CheckpointDue::Kind::interrupted);
      saved_step = due.state.step;
      dcgan::save_checkpoint(path, first.g, first.d, first.opt_g, first.opt_d, due.state);
    };
    REQUIRE(b.run() == dcgan::Outcome::interrupted);
  }
  REQUIRE(saved_step == kStop);
  Tiny second;
  dcgan::Trainer c = second.trainer(schedule(2, kWhole));
  c.resume(dcgan::load_checkpoint(path, second.g, second.d, second.opt_g, second.opt_d));
  REQUIRE(c.state().step == kStop);
  c.callbacks().on_step = keep_stats(split_stats);
  REQUIRE(c.run() == dcgan::Outcome::finished);
  REQUIRE(split_stats.size() == whole_stats.size());
  for (size_t i = 0; i < whole_stats.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(split_stats[i].loss_d == whole_stats[i].loss_d);
    CHECK(split_stats[i].loss_g == whole_stats[i].loss_g);
    CHECK(split_stats[i].d_g_z2 == whole_stats[i].d_g_z2);
  }
  CHECK(second.weights() == whole.weights());
  CHECK(c.state().rng == a.state().rng);
}

TEST_CASE("Trainer: timed checkpoints follow its clock, counted from the last checkpoint of any kind",
          "[trainer][timed]") {
  // A fake clock: 25 s a step, advanced by G's gradient hook, so step k's checks see 25k s.
  Tiny run;
  dcgan::Schedule s = schedule(2, 0);
  s.sample_every = 1000;
  s.checkpoint_every = 1000;
  double now = 0;
  auto with_clock = [&](dcgan::Trainer& t) {
    t.set_clock([&now] { return now; });
    t.callbacks().after_backward = [&](nn::Module& net) {
      if (&net == &run.g) now += 25;
    };
  };
  auto checkpoints = [](const std::vector<std::string>& events) {
    std::vector<std::string> out;
    for (const std::string& e : events)
      if (e.rfind("ckpt-", 0) == 0) out.push_back(e);
    return out;
  };
  SECTION("every 60 s: steps 3 (75 s) and 8 (200 s: 75 s after epoch 1's end at 125 s)") {
    s.checkpoint_seconds = 60;
    dcgan::Trainer t = run.trainer(s);
    with_clock(t);
    CHECK(checkpoints(record(t)) == split("ckpt-t3 ckpt-e5 ckpt-t8 ckpt-e10"));
  }
  SECTION("a periodic checkpoint restarts the interval") {
    s.checkpoint_seconds = 50;
    s.checkpoint_every = 3;  // without the restart at 3 (75 s), step 4 (100 s) would be 50 s after step 2
    dcgan::Trainer t = run.trainer(s);
    with_clock(t);
    CHECK(checkpoints(record(t)) == split("ckpt-t2 ckpt-p3 ckpt-e5 ckpt-p6 ckpt-t8 ckpt-p9 ckpt-e10"));
  }
  SECTION("one checkpoint a step at most") {
    s.checkpoint_seconds = 25;  // due every step
    s.checkpoint_every = 3;
    dcgan::Trainer t = run.trainer(s);
    with_clock(t);
    CHECK(checkpoints(record(t)) ==
          split("ckpt-t1 ckpt-t2 ckpt-p3 ckpt-t4 ckpt-e5 ckpt-p6 ckpt-t7 ckpt-t8 ckpt-p9 ckpt-e10"));
  }
  SECTION("0: off") {
    s.checkpoint_seconds = 0;
    dcgan::Trainer t = run.trainer(s);
    with_clock(t);
    CHECK(checkpoints(record(t)) == split("ckpt-e5 ckpt-e10"));
  }
  SECTION("negative: rejected") {
    s.checkpoint_seconds = -1;
    REQUIRE_THROWS_WITH(run.trainer(s), Contains("checkpoint_seconds"));
  }
}
