# Reference values for crtstats.standardise (marginal standardisation from fitted models).
#
# Run from the project folder:  Rscript tests/reference/standardise.R
# Reads data written by glmm.R and gee.R (tests/reference/data/) and writes
# tests/reference/standardise.json at full precision (digits = NA).
#
# 1. lme4::cbpp, glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
#    binomial), Laplace, with strict controls so that the fit is converged:
#    - conditional risks at b = 0 and their SEs from emmeans(type = "response"), and
#      the contrasts of period 2-4 against period 1 (risk difference on the response
#      scale via regrid(); risk ratio via regrid(transform = "log"); odds ratio on the
#      link scale);
#    - marginal risks as the exact integral over N(0, sigma^2) by integrate() at the R
#      fit's estimates, beside emmeans' bias.adjust = TRUE (a second-order Taylor
#      approximation, shown to differ);
#    - the delta-method SEs of the marginal risks and contrasts *with* the uncertainty
#      of sigma: numDeriv's Jacobian of the integrals in (beta, sigma), and the joint
#      covariance 2 H^-1 from numDeriv's Hessian of glmer's deviance function
#      (update(fit, devFunOnly = TRUE), parameters c(theta, beta)).
#    - cluster-specific risks: each row at its herd's conditional mode (ranef).
# 2. Poisson GLMM with exposure (glmm_counts_pois.csv): marginal rates per arm,
#    exp(eta + sigma^2 / 2) per row over the rows' exposure, with the delta method
#    as above.
# 3. GEE (geepack::geeglm, exchangeable, robust sandwich) on the example trial's
#    follow-up admissions: standardised risks per arm over the trial's own rows with
#    the analytic gradient by hand (checked by numDeriv), RD, RR, OR and their SEs;
#    and a Poisson GEE of bed days (rates).

suppressPackageStartupMessages({
  library(lme4)
  library(emmeans)
  library(geepack)
  library(numDeriv)
  library(jsonlite)
})

dir <- file.path("tests", "reference", "data")
strict <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
exact_int <- function(f) integrate(f, -Inf, Inf, rel.tol = 1e-13, abs.tol = 0,
                                   subdivisions = 1000L)$value

# joint covariance of (beta, sigma) from the Hessian of the deviance c(theta, beta)
joint_cov <- function(fit) {
  dd <- update(fit, devFunOnly = TRUE)
  pars <- c(getME(fit, "theta"), fixef(fit))
  H <- numDeriv::hessian(dd, pars)
  V <- 2 * solve(H)
  k <- length(pars)
  ord <- c(2:k, 1)  # (beta, sigma)
  V[ord, ord]
}

# ---- 1. cbpp ---------------------------------------------------------------------
cbpp <- read.csv(file.path(dir, "glmm_cbpp.csv"), stringsAsFactors = FALSE)
cbpp$period <- factor(cbpp$period)
fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
             family = binomial, control = strict)
beta <- fixef(fit)
sigma <- getME(fit, "theta")[[1]]
V <- joint_cov(fit)
p <- length(beta)
levels_p <- levels(cbpp$period)
# the linear predictor of every row at each period: (intercept + period effect)
eta_of <- function(b) c(b[1], b[1] + b[2:p])

emm <- emmeans(fit, ~ period, type = "response")
emm_s <- summary(emm)
rd <- summary(contrast(regrid(emm), "trt.vs.ctrl"))
rr <- summary(contrast(regrid(emm, transform = "log"), "trt.vs.ctrl"), type = "response")
or <- summary(contrast(emm, "trt.vs.ctrl"), type = "response")
total_sd <- sqrt(as.numeric(VarCorr(fit)$herd))
emm_bias <- summary(emmeans(fit, ~ period, type = "response", bias.adjust = TRUE,
                            sigma = total_sd))

marginal_of <- function(par) {
  b <- par[1:p]
  s <- par[p + 1]
  sapply(eta_of(b), function(e) exact_int(function(z) plogis(e + s * z) * dnorm(z)))
}
contrasts_of <- function(r) {
  r0 <- r[1]
  ra <- r[-1]
  c(ra - r0, ra / r0, (ra / (1 - ra)) / (r0 / (1 - r0)))
}
par_hat <- c(beta, sigma)
marg <- marginal_of(par_hat)
J_marg <- numDeriv::jacobian(function(par) c(marginal_of(par), contrasts_of(marginal_of(par))),
                             par_hat)
se_marg <- sqrt(diag(J_marg %*% V %*% t(J_marg)))
# the same with sigma held fixed (beta's covariance only): what ignoring it gives
V_beta <- V
V_beta[p + 1, ] <- 0
V_beta[, p + 1] <- 0
V_beta[1:p, 1:p] <- as.matrix(vcov(fit))
se_marg_fixed_sigma <- sqrt(diag(J_marg %*% V_beta %*% t(J_marg)))

# cluster-specific: each row at its herd's conditional mode, rows weighted by size
u <- ranef(fit)$herd[cbpp$herd, 1]
cs <- sapply(eta_of(beta), function(e) sum(cbpp$size * plogis(e + u)) / sum(cbpp$size))

cbpp_out <- list(
  levels = levels_p,
  beta = unname(beta), sigma = sigma, loglik = as.numeric(logLik(fit)),
  vcov_beta = unname(as.matrix(vcov(fit))), joint_cov = unname(V),
  conditional = list(risk = emm_s$prob, se = emm_s$SE,
                     rd = rd$estimate, rd_se = rd$SE,
                     rr = rr$ratio, rr_se = rr$SE,
                     or = or$odds.ratio, or_se = or$SE),
  marginal = list(risk = marg, contrasts = contrasts_of(marg), se = se_marg,
                  se_sigma_fixed = se_marg_fixed_sigma,
                  bias_adjusted = emm_bias$prob),
  cluster_specific = list(risk = cs, contrasts = contrasts_of(cs))
)

# ---- 2. Poisson GLMM with exposure ------------------------------------------------
pois <- read.csv(file.path(dir, "glmm_counts_pois.csv"), stringsAsFactors = FALSE)
pois$arm <- factor(pois$arm, levels = c("control", "intervention"))
pois$period <- factor(pois$period, levels = c("follow_up", "pre"))
fit_p <- glmer(admissions ~ arm + period + offset(log_users) + (1 | team_id), data = pois,
               family = poisson, control = strict)
bp <- fixef(fit_p)
sp <- getME(fit_p, "theta")[[1]]
Vp <- joint_cov(fit_p)
X_at <- function(a) model.matrix(~ arm + period,
                                 transform(pois, arm = factor(a, levels = levels(pois$arm))))
rate_of <- function(par) {
  b <- par[1:length(bp)]
  s <- par[length(bp) + 1]
  sapply(levels(pois$arm), function(a)
    sum(exp(X_at(a) %*% b + pois$log_users + s^2 / 2)) / sum(pois$n_users))
}
rate_contrasts <- function(r) c(r[2] - r[1], r[2] / r[1])
pp <- c(bp, sp)
rates <- rate_of(pp)
Jp <- numDeriv::jacobian(function(par) c(rate_of(par), rate_contrasts(rate_of(par))), pp)
# check the closed form against the integral for one row
row_int <- exact_int(function(z) exp(sum(X_at("control")[1, ] * bp) + sp * z +
                                          dnorm(z, log = TRUE)))
pois_out <- list(
  beta = unname(bp), sigma = sp, joint_cov = unname(Vp),
  rate = unname(rates), contrasts = unname(rate_contrasts(rates)),
  se = sqrt(diag(Jp %*% Vp %*% t(Jp))),
  closed_form_check = c(row_int, exp(sum(X_at("control")[1, ] * bp) + sp^2 / 2))
)

# ---- 3. GEE -----------------------------------------------------------------------
adm <- read.csv(file.path(dir, "gee_admissions.csv"), stringsAsFactors = FALSE)
adm$arm <- factor(adm$arm, levels = c("control", "intervention"))
adm$stratum <- factor(adm$stratum)
adm$sex <- factor(adm$sex)
adm <- adm[order(adm$team_id), ]
adm$cid <- match(adm$team_id, unique(adm$team_id))  # geeglm needs a numeric id
ctrl <- geese.control(epsilon = 1e-12, maxit = 100)

gee_std <- function(formula, family, inv, dinv, ratio_only = FALSE) {
  g <- geeglm(formula, id = cid, data = adm, family = family,
              corstr = "exchangeable", control = ctrl)
  b <- coef(g)
  Vg <- unname(as.matrix(vcov(g)))
  rhs <- delete.response(terms(formula))
  Xa <- lapply(levels(adm$arm), function(a)
    model.matrix(rhs, transform(adm, arm = factor(a, levels = levels(adm$arm)))))
  risk_of <- function(bb) sapply(Xa, function(X) mean(inv(X %*% bb)))
  r <- risk_of(b)
  # analytic gradient: mean over rows of h'(eta) x
  J <- t(sapply(Xa, function(X) colMeans(X * as.vector(dinv(X %*% b)))))
  cn <- function(r) if (ratio_only) c(r[2] - r[1], r[2] / r[1]) else
    c(r[2] - r[1], r[2] / r[1], (r[2] / (1 - r[2])) / (r[1] / (1 - r[1])))
  Jc <- numDeriv::jacobian(function(bb) cn(risk_of(bb)), b)
  J_num <- numDeriv::jacobian(risk_of, b)
  list(beta = unname(b), vcov = Vg, risk = r, contrasts = cn(r),
       se = sqrt(diag(J %*% Vg %*% t(J))), contrast_se = sqrt(diag(Jc %*% Vg %*% t(Jc))),
       gradient_check = max(abs(J - J_num)))
}
gee_bin <- gee_std(admitted ~ arm + stratum + pre_prop, binomial(), plogis,
                   function(e) plogis(e) * (1 - plogis(e)))
gee_pois <- gee_std(bed_days ~ arm + pre_prop + sex, poisson(), exp, exp, ratio_only = TRUE)

out <- list(cbpp = cbpp_out, poisson_glmm = pois_out,
            gee_binomial = gee_bin, gee_poisson = gee_pois,
            versions = list(R = R.version.string,
                            lme4 = as.character(packageVersion("lme4")),
                            emmeans = as.character(packageVersion("emmeans")),
                            geepack = as.character(packageVersion("geepack")),
                            numDeriv = as.character(packageVersion("numDeriv"))))
write_json(out, file.path("tests", "reference", "standardise.json"), digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
