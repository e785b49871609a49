# Reference values for how crtstats reads formulas as R users write them.
#
# Run from the repository root:  Rscript tests/reference/formulas.R
# Needs: jsonlite. Writes tests/reference/formulas.json and
# tests/reference/data/formulas.csv (the tests read both and never need R).
#
# Data: simulated here, 12 teams x 5 people; a cluster-level arm, person-level
# covariates (one of them named `center`, as in geepack's respiratory data), an
# ordered factor `grade` whose level order (low < mid < high < top) is not the
# sorted order, and a binary outcome. The fits read the data back from the CSV so
# that R and the tests see the same numbers.
#   power      lm(y ~ center + arm + I(age^2))
#   crossing   lm(y ~ (a + b + c)^2): R's columns of the order-2 crossing
#   ordered    lm(y ~ grade), grade an ordered factor: R's default polynomial
#              contrasts (contr.poly), and contr.poly(4) itself
#   treatment  lm(y ~ grade) with treatment contrasts (the factor unordered, levels
#              in the same order)

suppressPackageStartupMessages(library(jsonlite))

set.seed(20261201)
n_team <- 12
size <- 5
team <- rep(sprintf("T%02d", seq_len(n_team)), each = size)
arm <- rep(rep(c("control", "intervention"), n_team / 2), each = size)
n <- n_team * size
grade_levels <- c("low", "mid", "high", "top")
out_csv <- data.frame(
  team = team,
  arm = arm,
  center = round(rnorm(n), 6),
  age = round(runif(n, 20, 70), 3),
  a = round(rnorm(n), 6),
  b = round(rnorm(n), 6),
  c = round(rnorm(n), 6),
  grade = sample(grade_levels, n, replace = TRUE)
)
u <- rnorm(n_team)[as.integer(factor(team))]
out_csv$y <- round(10 + 2 * (arm == "intervention") + 0.5 * out_csv$center +
  0.002 * out_csv$age^2 + match(out_csv$grade, grade_levels) + u + rnorm(n), 6)
out_csv$admitted <- ifelse(out_csv$y + rnorm(n) > median(out_csv$y), "yes", "no")
dir.create("tests/reference/data", showWarnings = FALSE)
write.csv(out_csv, "tests/reference/data/formulas.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/formulas.csv")

coefs <- function(fit) as.list(coef(fit))

power <- lm(y ~ center + arm + I(age^2), data = d)
crossing <- lm(y ~ (a + b + c)^2, data = d)
d_ord <- d
d_ord$grade <- factor(d$grade, levels = grade_levels, ordered = TRUE)
ordered <- lm(y ~ grade, data = d_ord)
d_trt <- d
d_trt$grade <- factor(d$grade, levels = grade_levels)
treatment <- lm(y ~ grade, data = d_trt)

out <- list(
  power = list(names = names(coef(power)), coef = coefs(power)),
  crossing = list(
    names = colnames(model.matrix(~ (a + b + c)^2, data = d)),
    coef = unname(coef(crossing))
  ),
  ordered = list(
    names = names(coef(ordered)),
    coef = unname(coef(ordered)),
    contr_poly_4 = unname(split(contr.poly(4), col(contr.poly(4))))
  ),
  treatment = list(names = names(coef(treatment)), coef = unname(coef(treatment)))
)
write_json(out, "tests/reference/formulas.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
