# forkline-probe: triad's speedup and efficiency. Run from this folder: gnuplot triad.gp
set datafile missing '?'
set xlabel 'workers'
set grid
set key top left
set samples 400
set xrange [0.8:2.3]
set xtics (1, 2)
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1200,480 noenhanced
} else {
    set terminal png size 1200,480 noenhanced
}
set output 'triad.png'
set multiplot layout 1,2 title 'triad: scales' noenhanced
set title 'speedup'
set ylabel 'speedup (1-worker median / median)'
set yrange [0:*]
set key top left
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', \
     'triad.dat' using 1:5:6:7 title 'measured (median, min-max)' with yerrorlines lw 2 pt 7 lc rgb '#1f77b4'
set title 'efficiency'
set ylabel 'speedup / workers'
set yrange [0:*]
set key bottom left
plot 1 title 'ideal' with lines dashtype 2 lc rgb '#999999', \
     'triad.dat' using 1:8 title 'measured' with linespoints lw 2 pt 7 lc rgb '#1f77b4'
unset multiplot
set terminal svg size 1200,480 dynamic background rgb 'white' noenhanced
set output 'triad.svg'
set multiplot layout 1,2 title 'triad: scales' noenhanced
set title 'speedup'
set ylabel 'speedup (1-worker median / median)'
set yrange [0:*]
set key top left
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', \
     'triad.dat' using 1:5:6:7 title 'measured (median, min-max)' with yerrorlines lw 2 pt 7 lc rgb '#1f77b4'
set title 'efficiency'
set ylabel 'speedup / workers'
set yrange [0:*]
set key bottom left
plot 1 title 'ideal' with lines dashtype 2 lc rgb '#999999', \
     'triad.dat' using 1:8 title 'measured' with linespoints lw 2 pt 7 lc rgb '#1f77b4'
unset multiplot
unset output
